// trace's renderings of decoded events: JSON lines (docs/trace-json.md) and text.
#include "events/event_format.hpp"

#include <arpa/inet.h>

#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <ctime>

#include "probes/strategy.hpp"
#include "util/clock.hpp"

namespace connscope {

const char* event_type_name(uint8_t type) {
  switch (type) {
    case CS_EV_CONNECT:
      return "connect";
    case CS_EV_PORT_ALLOC:
      return "port_alloc";
    case CS_EV_STATE:
      return "state";
    case CS_EV_RETRANSMIT:
      return "retransmit";
    case CS_EV_ACCEPT_QUEUE:
      return "accept_queue";
    default:
      return "other";
  }
}

namespace {

constexpr std::array<const char*, 13> tcp_states = {
    "UNKNOWN", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",   "TIME_WAIT",
    "CLOSE",   "CLOSE_WAIT",  "LAST_ACK", "LISTEN",   "CLOSING",   "NEW_SYN_RECV"};

Family family_of_type(uint8_t type) {
  switch (type) {
    case CS_EV_CONNECT:
      return Family::connect;
    case CS_EV_PORT_ALLOC:
      return Family::port_alloc;
    case CS_EV_STATE:
      return Family::state;
    case CS_EV_RETRANSMIT:
      return Family::retransmit;
    default:
      return Family::accept_queue;
  }
}

// Minimal JSON object builder over a caller-owned buffer.
class JsonLine {
 public:
  explicit JsonLine(std::string& out) : out_(out) { out_ += '{'; }
  ~JsonLine() { out_ += "}\n"; }
  JsonLine(const JsonLine&) = delete;
  JsonLine& operator=(const JsonLine&) = delete;

  void num(const char* key, uint64_t v) {
    this->key(key);
    append_number(v);
  }
  void snum(const char* key, int64_t v) {
    this->key(key);
    append_number(v);
  }
  void boolean(const char* key, bool v) {
    this->key(key);
    out_ += v ? "true" : "false";
  }
  void str(const char* key, std::string_view v) {
    this->key(key);
    out_ += '"';
    for (char c : v) {
      auto u = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        out_ += '\\';
        out_ += c;
      } else if (u < 0x20) {
        char buf[8];
        snprintf(buf, sizeof(buf), "\\u%04x", u);
        out_ += buf;
      } else {
        out_ += c;
      }
    }
    out_ += '"';
  }
  void raw(const char* key, std::string_view json) {
    this->key(key);
    out_ += json;
  }

 private:
  void key(const char* k) {
    if (!first_) out_ += ',';
    first_ = false;
    out_ += '"';
    out_ += k;
    out_ += "\":";
  }
  template <typename T>
  void append_number(T v) {
    char buf[24];
    auto res = std::to_chars(buf, buf + sizeof(buf), v);
    out_.append(buf, res.ptr);
  }
  std::string& out_;
  bool first_ = true;
};

// Floor division: seconds and the non-negative remainder, before 1970 too.
void split_ns(int64_t ns, int64_t& sec, int64_t& sub) {
  sec = ns / 1000000000;
  sub = ns % 1000000000;
  if (sub < 0) {
    sub += 1000000000;
    --sec;
  }
}

void time_fields(JsonLine& j, uint64_t ts_ns, const WallClock& clock) {
  j.num("ts_ns", ts_ns);
  int64_t sec = 0, sub = 0;
  split_ns(clock.unix_ns(ts_ns), sec, sub);
  char buf[32];
  const int n =
      snprintf(buf, sizeof(buf), "%lld.%06lld", static_cast<long long>(sec), static_cast<long long>(sub / 1000));
  j.raw("time", std::string_view(buf, static_cast<size_t>(n)));
}

void header_fields(JsonLine& j, const cs_header& h, const WallClock& clock) {
  Family f = family_of_type(h.type);
  Tier t = static_cast<Tier>(h.tier);
  j.str("type", event_type_name(h.type));
  time_fields(j, h.ts_ns, clock);
  // Poll-derived accept-queue records come from user space, not a BPF hook.
  bool polled = h.type == CS_EV_ACCEPT_QUEUE && (h.flags & CS_AQ_F_APPROXIMATE);
  j.str("strategy", polled ? "poll" : strategy_name(f, t));
  j.str("tier", tier_name(t));
}

void flow_fields(JsonLine& j, const cs_flow& f) {
  j.str("family", f.family == AF_INET6 ? "ipv6" : f.family == AF_INET ? "ipv4" : "unknown");
  j.str("saddr", format_address(f.family, f.saddr));
  j.num("sport", f.sport);
  j.str("daddr", format_address(f.family, f.daddr));
  j.num("dport", f.dport);
  j.num("netns", f.netns);
}

void task_fields(JsonLine& j, const cs_task& t) {
  j.num("pid", t.tgid);
  j.num("tid", t.pid);
  j.str("comm", std::string_view(t.comm, strnlen(t.comm, sizeof(t.comm))));
  j.num("cgroup_id", t.cgroup_id);
}

void errno_fields(JsonLine& j, int err) {
  j.snum("errno", err);
  if (err != 0) j.str("error", errno_name(err));
}

const char* retransmit_kind(uint8_t kind) {
  switch (kind) {
    case CS_RETRANS_SYN:
      return "syn";
    case CS_RETRANS_SYNACK:
      return "synack";
    default:
      return "data";
  }
}

const char* accept_queue_kind(uint8_t kind) {
  switch (kind) {
    case CS_AQ_OVERFLOW:
      return "overflow";
    case CS_AQ_DROP:
      return "drop";
    default:
      return "queued";
  }
}

}  // namespace

WallClock WallClock::from_pair(uint64_t mono_ns, double unix_s, Zone zone) {
  return WallClock(std::llround(unix_s * 1e9) - static_cast<int64_t>(mono_ns), zone);
}

WallClock WallClock::now(Zone zone) {
  const uint64_t mono = monotonic_now_ns();
  return from_pair(mono, unix_now_s(), zone);
}

void WallClock::append_time_of_day(std::string& out, uint64_t ts_ns) const {
  int64_t sec = 0, sub = 0;
  split_ns(unix_ns(ts_ns), sec, sub);
  if (sec != cached_second_) {
    const auto t = static_cast<time_t>(sec);
    tm parts{};
    if (zone_ == Zone::utc)
      gmtime_r(&t, &parts);
    else
      localtime_r(&t, &parts);
    snprintf(cached_hms_, sizeof(cached_hms_), "%02d:%02d:%02d", parts.tm_hour, parts.tm_min, parts.tm_sec);
    cached_second_ = sec;
  }
  char ms[8];
  snprintf(ms, sizeof(ms), ".%03d", static_cast<int>(sub / 1000000));
  out += cached_hms_;
  out += ms;
}

std::string errno_name(int err) {
  if (const char* name = strerrorname_np(err)) return name;
  return "E" + std::to_string(err);
}

const char* tcp_state_name(int state) {
  if (state < 0 || static_cast<size_t>(state) >= tcp_states.size()) return "UNKNOWN";
  return tcp_states[static_cast<size_t>(state)];
}

const char* state_event_name(const cs_state_event& e) {
  if (e.h.flags & CS_STATE_F_TIME_WAIT) return "time_wait";
  if (e.oldstate == CS_TCP_SYN_SENT && e.newstate == CS_TCP_ESTABLISHED) return "handshake";
  if (e.oldstate == CS_TCP_SYN_SENT && e.newstate == CS_TCP_CLOSE) return "connect_failed";
  if (e.oldstate == CS_TCP_SYN_RECV && e.newstate == CS_TCP_ESTABLISHED) return "passive_open";
  if (e.newstate == CS_TCP_CLOSE) return "close";
  return "transition";
}

void append_event_json(std::string& out, const Event& event, const WallClock& clock) {
  JsonLine j(out);
  header_fields(j, header_of(event), clock);
  std::visit(
      [&](const auto& e) {
        using T = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<T, cs_connect_event>) {
          task_fields(j, e.task);
          flow_fields(j, e.flow);
          j.num("latency_ns", e.latency_ns);
          errno_fields(j, e.err);
        } else if constexpr (std::is_same_v<T, cs_port_alloc_event>) {
          task_fields(j, e.task);
          flow_fields(j, e.flow);
          j.num("duration_ns", e.duration_ns);
          j.num("port", e.flow.sport);
          errno_fields(j, e.err);
          j.num("range_lo", e.range_lo);
          j.num("range_hi", e.range_hi);
          j.boolean("approximate", e.h.flags & CS_PORT_ALLOC_F_APPROXIMATE);
        } else if constexpr (std::is_same_v<T, cs_state_event>) {
          task_fields(j, e.task);
          flow_fields(j, e.flow);
          j.str("event", state_event_name(e));
          j.str("oldstate", tcp_state_name(e.oldstate));
          j.str("newstate", tcp_state_name(e.newstate));
          j.str("state", tcp_state_name(e.newstate));
          if (e.latency_ns) j.num("latency_ns", e.latency_ns);
          if (e.duration_ns) j.num("duration_ns", e.duration_ns);
          errno_fields(j, e.err);
        } else if constexpr (std::is_same_v<T, cs_retransmit_event>) {
          flow_fields(j, e.flow);
          j.str("kind", retransmit_kind(e.kind));
          j.str("state", tcp_state_name(e.state));
          errno_fields(j, e.err);
        } else {
          flow_fields(j, e.flow);
          j.str("kind", accept_queue_kind(e.kind));
          j.num("backlog", e.backlog);
          j.num("max_backlog", e.max_backlog);
          j.num("count", e.count);
          j.boolean("approximate", e.h.flags & CS_AQ_F_APPROXIMATE);
        }
      },
      event);
}

void append_event_text(std::string& out, const Event& event, const WallClock& clock) {
  const cs_header& h = header_of(event);
  clock.append_time_of_day(out, h.ts_ns);
  char type[24];
  snprintf(type, sizeof(type), " %-12s ", event_type_name(h.type));
  out += type;
  auto flow_text = [&](const cs_flow& f) {
    bool v6 = f.family == AF_INET6;
    out += (v6 ? "[" : "") + format_address(f.family, f.saddr) + (v6 ? "]:" : ":") + std::to_string(f.sport);
    out += " -> ";
    out += (v6 ? "[" : "") + format_address(f.family, f.daddr) + (v6 ? "]:" : ":") + std::to_string(f.dport);
  };
  auto task_text = [&](const cs_task& t) {
    if (t.tgid)
      out += " pid=" + std::to_string(t.tgid) + " comm=" + std::string(t.comm, strnlen(t.comm, sizeof(t.comm)));
  };
  std::visit(
      [&](const auto& e) {
        using T = std::decay_t<decltype(e)>;
        flow_text(e.flow);
        if constexpr (std::is_same_v<T, cs_connect_event>) {
          task_text(e.task);
          out += " latency=" + std::to_string(e.latency_ns / 1000) + "us";
          if (e.err) out += " error=" + errno_name(e.err);
        } else if constexpr (std::is_same_v<T, cs_port_alloc_event>) {
          task_text(e.task);
          out += " search=" + std::to_string(e.duration_ns / 1000) + "us range=" + std::to_string(e.range_lo) + "-" +
                 std::to_string(e.range_hi);
          if (e.err) out += " error=" + errno_name(e.err);
        } else if constexpr (std::is_same_v<T, cs_state_event>) {
          task_text(e.task);
          out += std::string(" ") + state_event_name(e) + " " + tcp_state_name(e.oldstate) + "->" +
                 tcp_state_name(e.newstate);
          if (e.latency_ns) out += " latency=" + std::to_string(e.latency_ns / 1000) + "us";
          if (e.duration_ns) out += " duration=" + std::to_string(e.duration_ns / 1000000) + "ms";
          if (e.err) out += " error=" + errno_name(e.err);
        } else if constexpr (std::is_same_v<T, cs_retransmit_event>) {
          out += std::string(" kind=") + retransmit_kind(e.kind) + " state=" + tcp_state_name(e.state);
        } else {
          out += std::string(" kind=") + accept_queue_kind(e.kind) + " backlog=" + std::to_string(e.backlog) + "/" +
                 std::to_string(e.max_backlog);
          if (e.count > 1) out += " count=" + std::to_string(e.count);
        }
      },
      event);
  out += '\n';
}

void append_loss_json(std::string& out, const LossCounters& loss, uint64_t ts_ns, bool final, const WallClock& clock) {
  std::string by_type = "{";
  for (uint8_t t = 0; t < CS_EV_TYPE_MAX; t++) {
    if (t > 0) by_type += ',';
    by_type += std::string("\"") + event_type_name(t) + "\":" + std::to_string(loss.lost_by_type[t]);
  }
  by_type += '}';
  JsonLine j(out);
  j.str("type", "loss");
  time_fields(j, ts_ns, clock);
  j.num("lost", loss.lost_total);
  j.raw("lost_by_type", by_type);
  j.num("map_full", loss.map_full);
  j.boolean("final", final);
}

}  // namespace connscope
