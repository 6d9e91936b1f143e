// Assertions shared by the scenario tests.
#include "scenario.hpp"

#include <sys/stat.h>

#include <sstream>

namespace itest {

namespace {

// cgroup v2 id of this process (its helpers share it): the inode of its
// directory in the cgroup2 mount, as bpf_get_current_cgroup_id() reports it.
// nullopt without a cgroup2 mount.
std::optional<uint64_t> own_cgroup_id() {
  static const std::optional<uint64_t> id = []() -> std::optional<uint64_t> {
    std::string rel;
    for (const auto& l : split_lines(read_file("/proc/self/cgroup").value_or("")))
      if (l.rfind("0::", 0) == 0) rel = l.substr(3);
    if (rel.empty()) return std::nullopt;
    for (const auto& l : split_lines(read_file("/proc/self/mountinfo").value_or(""))) {
      auto dash = l.find(" - cgroup2 ");
      if (dash == std::string::npos) continue;
      std::istringstream in(l.substr(0, dash));
      std::string f[5];
      for (auto& x : f) in >> x;  // id parent dev root mountpoint
      if (f[3] != "/") continue;
      struct stat st {};
      if (stat((f[4] + rel).c_str(), &st) == 0) return st.st_ino;
    }
    return std::nullopt;
  }();
  return id;
}

}  // namespace

void check_flow(const json& r, const FlowExpect& e) {
  CHECK_FIELD(r, "family", family_name(e.af));
  CHECK_FIELD(r, "saddr", e.saddr);
  CHECK_FIELD(r, "daddr", e.daddr);
  if (e.sport) CHECK_FIELD(r, "sport", e.sport);
  CHECK_FIELD(r, "dport", e.dport);
  CHECK_FIELD(r, "netns", e.netns);
}

void check_task(const json& r, pid_t pid, pid_t tid, const std::string& comm) {
  CHECK_FIELD(r, "pid", pid);
  CHECK_FIELD(r, "tid", tid);
  CHECK_FIELD(r, "comm", comm);
  if (auto cg = own_cgroup_id()) CHECK_FIELD(r, "cgroup_id", *cg);
}

void check_approximate_by_tier(const json& r) {
  const bool fallback = r.value("tier", "") == "fallback";
  CHECK_MESSAGE((r.contains("approximate") && r["approximate"].is_boolean() && r["approximate"] == fallback),
                "field \"approximate\": expected "
                    << (fallback ? "true" : "false") << " on tier " << r.value("tier", "?") << ", got "
                    << (r.contains("approximate") ? r["approximate"].dump() : "<missing>") << "\n  in " << r.dump());
}

void finish_run(AgentRun& agent, int sig, uint64_t only_netns) {
  AgentExit ex = agent.stop(sig);
  CHECK_MESSAGE(ex.exited_zero(), "the agent should exit 0 after " << strsignal(sig) << "\n" << agent.describe());
  check_common(agent.records(), agent.started_ns(), agent.stopped_ns());
  if (only_netns) {
    auto others = agent.records().where([&](const json& r) {
      return r.value("type", "") != "loss" && !(r.contains("netns") && r["netns"] == only_netns);
    });
    CHECK_MESSAGE(others.empty(), "--netns " << only_netns << " run produced records of other namespaces:\n"
                                             << dump_list(others));
  }
}

std::optional<json> exactly_one(const Records& recs, const Match& m, const std::string& what) {
  auto v = recs.where(m);
  CHECK_MESSAGE(v.size() == 1, "expected exactly one " << what << " record matching " << m.describe() << ", got "
                                                       << v.size() << ":\n"
                                                       << dump_list(v));
  if (v.size() != 1) return std::nullopt;
  return v[0];
}

std::vector<json> at_least_one(const Records& recs, const Match& m, const std::string& what) {
  auto v = recs.where(m);
  CHECK_MESSAGE(!v.empty(), "expected at least one " << what << " record matching " << m.describe() << ", got none");
  return v;
}

}  // namespace itest
