// Loading and matching the agent's JSON-lines records.
#include "events.hpp"

#include <sys/socket.h>

#include <cstring>

#include "agent_process.hpp"
#include "netns.hpp"
#include "util.hpp"

namespace itest {

Records Records::parse(const std::string& text, bool complete) {
  Records r;
  std::size_t pos = 0;
  int lineno = 0;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    if (nl == std::string::npos && !complete) break;  // being written
    std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    lineno++;
    if (trim(line).empty()) {
      r.bad_lines.push_back("line " + std::to_string(lineno) + ": empty line");
      continue;
    }
    try {
      json j = json::parse(line);
      if (!j.is_object()) throw std::runtime_error("not a JSON object");
      r.all.push_back(std::move(j));
    } catch (const std::exception& e) {
      r.bad_lines.push_back("line " + std::to_string(lineno) + ": " + line + ": " + e.what());
    }
  }
  return r;
}

std::vector<json> Records::where(const std::function<bool(const json&)>& pred) const {
  std::vector<json> out;
  for (const auto& r : all)
    if (pred(r)) out.push_back(r);
  return out;
}

bool Records::any(const std::function<bool(const json&)>& pred) const {
  for (const auto& r : all)
    if (pred(r)) return true;
  return false;
}

std::string dump_list(const std::vector<json>& v, std::size_t limit) {
  std::ostringstream o;
  std::size_t n = 0;
  for (const auto& r : v) {
    if (n++ == limit) {
      o << "  ... and " << (v.size() - limit) << " more\n";
      break;
    }
    o << "  " << r.dump() << "\n";
  }
  if (v.empty()) o << "  <none>\n";
  return o.str();
}

std::string Records::dump(const std::function<bool(const json&)>& pred, std::size_t limit) const {
  return dump_list(where(pred), limit);
}

std::string Records::dump_netns(std::initializer_list<uint64_t> inodes, std::size_t limit) const {
  std::set<uint64_t> set(inodes);
  return dump(
      [&](const json& r) {
        return r.contains("netns") && r["netns"].is_number_unsigned() && set.count(r["netns"].get<uint64_t>());
      },
      limit);
}

namespace {

const std::set<std::string> kTypes = {"connect", "port_alloc", "state", "retransmit", "accept_queue", "loss"};
const std::set<std::string> kTiers = {"preferred", "second", "fallback"};

bool is_uint(const json& r, const char* k, uint64_t max = UINT64_MAX) {
  return r.contains(k) && r[k].is_number_unsigned() && r[k].get<uint64_t>() <= max;
}

bool is_canonical(const std::string& fam, const json& v) {
  if (!v.is_string()) return false;
  try {
    return canonical_ip(fam == "ipv6" ? AF_INET6 : AF_INET, v.get<std::string>()) == v.get<std::string>();
  } catch (...) {
    return false;
  }
}

}  // namespace

void check_common(const Records& recs, uint64_t start_ns, uint64_t stop_ns) {
  CHECK_MESSAGE(recs.bad_lines.empty(), "lines of the output that are not JSON objects:\n"
                                            << join(recs.bad_lines, "\n"));

  std::vector<std::string> problems;
  auto bad = [&](const json& r, const std::string& what) {
    if (problems.size() < 30) problems.push_back(what + "\n    in " + r.dump());
  };

  for (const auto& r : recs.all) {
    std::string type = r.value("type", "");
    if (!kTypes.count(type)) {
      bad(r, "unknown or missing \"type\"");
      continue;
    }
    if (!is_uint(r, "ts_ns"))
      bad(r, "\"ts_ns\" missing or not an unsigned number");
    else if (r["ts_ns"].get<uint64_t>() < start_ns || r["ts_ns"].get<uint64_t>() > stop_ns)
      bad(r, "\"ts_ns\" outside the run's CLOCK_MONOTONIC window [" + std::to_string(start_ns) + ", " +
                 std::to_string(stop_ns) + "]");
    if (type == "loss") continue;

    if (!r.contains("strategy") || !r["strategy"].is_string() || r["strategy"].get<std::string>().empty())
      bad(r, "\"strategy\" missing or empty");
    std::string tier = r.value("tier", "");
    if (!kTiers.count(tier)) bad(r, "\"tier\" missing or not preferred/second/fallback");
    auto expected = expected_tier(type);
    if (expected && tier != *expected) bad(r, "\"tier\" is not the forced CONNSCOPE_STRATEGY=" + *expected);

    std::string fam = r.value("family", "");
    // docs/trace-json.md: a poll record no listener could be blamed for.
    if (type == "accept_queue" && r.value("strategy", "") == "poll" && fam == "unknown") {
      if (r.value("saddr", "x") != "" || r.value("daddr", "x") != "" || r.value("sport", 1) != 0 ||
          !is_uint(r, "count") || r["count"].get<uint64_t>() == 0)
        bad(r, "unattributed poll record must have empty saddr/daddr, sport 0 and a count");
      continue;
    }
    if (fam != "ipv4" && fam != "ipv6") bad(r, "\"family\" not ipv4/ipv6");
    if (!is_canonical(fam, r.value("saddr", json()))) bad(r, "\"saddr\" not a canonical " + fam + " address");
    if (!is_canonical(fam, r.value("daddr", json()))) bad(r, "\"daddr\" not a canonical " + fam + " address");
    if (!is_uint(r, "sport", 65535) || !is_uint(r, "dport", 65535)) bad(r, "\"sport\"/\"dport\" not ports");
    if (!is_uint(r, "netns", UINT32_MAX) || r["netns"].get<uint64_t>() == 0) bad(r, "\"netns\" not an inode");

    if (type == "connect" || type == "port_alloc" || type == "state") {
      if (!is_uint(r, "pid") || !is_uint(r, "tid") || !is_uint(r, "cgroup_id") || !r.contains("comm") ||
          !r["comm"].is_string())
        bad(r, "task fields pid/tid/comm/cgroup_id missing or mistyped");
    }
    if (r.contains("errno")) {
      if (!r["errno"].is_number_integer()) {
        bad(r, "\"errno\" not an integer");
      } else if (r["errno"].get<int64_t>() != 0) {
        const char* name = strerrorname_np(static_cast<int>(r["errno"].get<int64_t>()));
        if (!r.contains("error") || r["error"] != (name ? name : ""))
          bad(r, std::string("\"error\" should be the errno's name ") + (name ? name : "?"));
      } else if (r.contains("error")) {
        bad(r, "\"error\" present with errno 0");
      }
    } else if (type != "accept_queue") {
      bad(r, "\"errno\" missing");
    }
  }
  CHECK_MESSAGE(problems.empty(), "records that break docs/trace-json.md:\n  " << join(problems, "\n  "));

  // The final loss record: exactly one, last, nothing lost at these rates.
  auto finals = recs.where([](const json& r) { return r.value("type", "") == "loss" && r.value("final", false); });
  CHECK_MESSAGE(finals.size() == 1, "expected exactly one {\"type\":\"loss\",\"final\":true} record, got "
                                        << finals.size() << ":\n"
                                        << dump_list(finals));
  if (!recs.all.empty() && finals.size() == 1) {
    const json& last = recs.all.back();
    CHECK_MESSAGE(last == finals[0], "the final loss record is not the last line; last line: " << last.dump());
    const json& f = finals[0];
    CHECK_FIELD(f, "lost", 0);
    CHECK_FIELD(f, "map_full", 0);
    bool by_type_ok = f.contains("lost_by_type") && f["lost_by_type"].is_object();
    if (by_type_ok)
      for (const auto& [k, v] : f["lost_by_type"].items()) by_type_ok = by_type_ok && v == 0;
    CHECK_MESSAGE(by_type_ok, "lost_by_type should be an object of zero counts: " << f.dump());
  }
}

}  // namespace itest
