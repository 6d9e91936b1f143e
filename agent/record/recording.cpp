// The recording format's writer and reader (frames of raw records, settings, census, losses).
#include "record/recording.hpp"

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace connscope {
namespace {

using nlohmann::json;

constexpr uint32_t kMaxPayload = 64u << 20;

json settings_json(const NetnsSettings& s) {
  json reserved = json::array();
  for (const PortRange& r : s.reserved) reserved.push_back({r.lo, r.hi});
  return {{"netns", s.netns},
          {"port_lo", s.port_lo},
          {"port_hi", s.port_hi},
          {"reserved", reserved},
          {"usable_ports", s.usable_ports},
          {"tw_reuse", s.tw_reuse},
          {"tw_reuse_delay_ms", s.tw_reuse_delay_ms},
          {"tw_reuse_delay_present", s.tw_reuse_delay_present},
          {"timestamps", s.timestamps},
          {"fin_timeout", s.fin_timeout},
          {"max_tw_buckets", s.max_tw_buckets},
          {"somaxconn", s.somaxconn},
          {"max_syn_backlog", s.max_syn_backlog},
          {"syncookies", s.syncookies},
          {"agent_netns", s.agent_netns},
          {"enter_path", s.enter_path}};
}

NetnsSettings settings_from_json(const json& j) {
  NetnsSettings s;
  s.netns = j.at("netns").get<uint32_t>();
  s.port_lo = j.at("port_lo").get<uint16_t>();
  s.port_hi = j.at("port_hi").get<uint16_t>();
  s.reserved.clear();
  for (const auto& r : j.at("reserved"))
    s.reserved.push_back(PortRange{r.at(0).get<uint16_t>(), r.at(1).get<uint16_t>()});
  s.usable_ports = j.at("usable_ports").get<uint32_t>();
  s.tw_reuse = j.at("tw_reuse").get<int>();
  s.tw_reuse_delay_ms = j.at("tw_reuse_delay_ms").get<uint32_t>();
  s.tw_reuse_delay_present = j.at("tw_reuse_delay_present").get<bool>();
  s.timestamps = j.at("timestamps").get<int>();
  s.fin_timeout = j.at("fin_timeout").get<int>();
  s.max_tw_buckets = j.at("max_tw_buckets").get<uint32_t>();
  s.somaxconn = j.at("somaxconn").get<uint32_t>();
  s.max_syn_backlog = j.at("max_syn_backlog").get<uint32_t>();
  s.syncookies = j.at("syncookies").get<int>();
  s.agent_netns = j.value("agent_netns", false);  // absent in older recordings
  s.enter_path = j.value("enter_path", std::string());
  return s;
}

json listener_json(const ListenerInfo& l) {
  return {{"family", l.family},
          {"addr", std::vector<uint8_t>(l.addr.begin(), l.addr.end())},
          {"port", l.port},
          {"queue_len", l.queue_len},
          {"max_backlog", l.max_backlog},
          {"drops", l.drops},
          {"has_drops", l.has_drops}};
}

ListenerInfo listener_from_json(const json& j) {
  ListenerInfo l{};
  l.family = j.at("family").get<uint16_t>();
  auto addr = j.at("addr").get<std::vector<uint8_t>>();
  if (addr.size() != 16) throw std::runtime_error("listener address is not 16 bytes");
  std::copy(addr.begin(), addr.end(), l.addr.begin());
  l.port = j.at("port").get<uint16_t>();
  l.queue_len = j.at("queue_len").get<uint32_t>();
  l.max_backlog = j.at("max_backlog").get<uint32_t>();
  l.drops = j.at("drops").get<uint32_t>();
  l.has_drops = j.at("has_drops").get<bool>();
  return l;
}

// Census records, packed field by field (no struct padding in the file).
constexpr size_t kCensusRecord = 2 + 16 + 16 + 2 + 2 + 1 + 4 * 5;

template <typename T>
void put(std::vector<uint8_t>& out, const T& v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  out.insert(out.end(), p, p + sizeof v);
}

template <typename T>
T get(const uint8_t*& p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  p += sizeof v;
  return v;
}

std::vector<uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }

}  // namespace

RecordingWriter::RecordingWriter(const std::string& path) : path_(path) {
  f_ = std::fopen(path.c_str(), "wb");
  if (!f_) throw std::runtime_error("cannot create recording " + path + ": " + std::strerror(errno));
  std::setvbuf(f_, nullptr, _IOFBF, 1 << 20);
  if (std::fwrite(kRecordingMagic, 1, sizeof kRecordingMagic - 1, f_) != sizeof kRecordingMagic - 1)
    throw std::runtime_error("cannot write recording " + path + ": " + std::strerror(errno));
}

RecordingWriter::~RecordingWriter() {
  if (f_) std::fclose(f_);
}

void RecordingWriter::frame(FrameKind kind, uint64_t ts_ns, std::span<const uint8_t> payload) {
  uint8_t head[16] = {};
  head[0] = static_cast<uint8_t>(kind);
  const auto len = static_cast<uint32_t>(payload.size());
  std::memcpy(head + 4, &len, 4);
  std::memcpy(head + 8, &ts_ns, 8);
  if (std::fwrite(head, 1, sizeof head, f_) != sizeof head || (len && std::fwrite(payload.data(), 1, len, f_) != len))
    throw std::runtime_error("writing recording " + path_ + " failed: " + std::strerror(errno));
  frames_++;
}

void RecordingWriter::meta(const RecordingMeta& m) {
  json strategies = json::object();
  for (const auto& s : m.strategies) strategies[s.family] = s.strategy;
  json j = {{"version", m.version},
            {"kernel", m.kernel},
            {"strategies", strategies},
            {"start_mono_ns", m.start_mono_ns},
            {"start_unix_s", m.start_unix_s}};
  frame(FrameKind::meta, m.start_mono_ns, bytes_of(j.dump()));
}

void RecordingWriter::event(uint64_t ts_ns, std::span<const uint8_t> bytes) { frame(FrameKind::event, ts_ns, bytes); }

void RecordingWriter::settings(uint64_t ts_ns, const NetnsSettings& s) {
  frame(FrameKind::settings, ts_ns, bytes_of(settings_json(s).dump()));
}

void RecordingWriter::listeners(uint64_t ts_ns, uint32_t netns, const std::vector<ListenerInfo>& l) {
  json arr = json::array();
  for (const auto& x : l) arr.push_back(listener_json(x));
  frame(FrameKind::listeners, ts_ns, bytes_of(json{{"netns", netns}, {"listeners", arr}}.dump()));
}

void RecordingWriter::census(uint64_t ts_ns, uint32_t netns, const std::vector<SocketRecord>& sockets,
                             CensusScope scope) {
  std::vector<uint8_t> out;
  out.reserve(12 + sockets.size() * kCensusRecord);
  put(out, netns);
  if (!scope.whole()) {
    put(out, scope.states);
    put(out, scope.local_ports.lo);
    put(out, scope.local_ports.hi);
  }
  for (const SocketRecord& s : sockets) {
    put(out, s.family);
    out.insert(out.end(), s.saddr.begin(), s.saddr.end());
    out.insert(out.end(), s.daddr.begin(), s.daddr.end());
    put(out, s.sport);
    put(out, s.dport);
    put(out, s.state);
    put(out, s.expires_ms);
    put(out, s.rqueue);
    put(out, s.wqueue);
    put(out, s.uid);
    put(out, s.inode);
  }
  frame(scope.whole() ? FrameKind::census : FrameKind::census_scope, ts_ns, out);
}

void RecordingWriter::losses(uint64_t ts_ns, const LossCounters& l) {
  std::vector<uint8_t> out;
  for (uint64_t v : l.lost_by_type) put(out, v);
  put(out, l.map_full);
  frame(FrameKind::losses, ts_ns, out);
}

void RecordingWriter::end(uint64_t ts_ns) {
  frame(FrameKind::end, ts_ns, {});
  flush();
}

void RecordingWriter::flush() {
  if (std::fflush(f_) != 0) throw std::runtime_error("writing recording " + path_ + " failed: " + std::strerror(errno));
}

RecordingReader::RecordingReader(const std::string& path) : path_(path) {
  f_ = std::fopen(path.c_str(), "rb");
  if (!f_) throw std::runtime_error("cannot open recording " + path + ": " + std::strerror(errno));
  char magic[sizeof kRecordingMagic - 1];
  if (std::fread(magic, 1, sizeof magic, f_) != sizeof magic || std::memcmp(magic, kRecordingMagic, sizeof magic) != 0)
    throw std::runtime_error(path + " is not a connscope recording (make one with: connscope record --out FILE)");
  offset_ = sizeof magic;
}

RecordingReader::~RecordingReader() {
  if (f_) std::fclose(f_);
}

std::optional<RecordingItem> RecordingReader::next() {
  uint8_t head[16];
  const size_t got = std::fread(head, 1, sizeof head, f_);
  if (got == 0 && std::feof(f_)) return std::nullopt;
  auto corrupt = [this](const std::string& what) {
    return std::runtime_error("recording " + path_ + " is corrupt at byte " + std::to_string(offset_) + ": " + what);
  };
  if (got != sizeof head) throw corrupt("truncated frame header");
  uint32_t len;
  uint64_t ts;
  std::memcpy(&len, head + 4, 4);
  std::memcpy(&ts, head + 8, 8);
  if (len > kMaxPayload) throw corrupt("frame of " + std::to_string(len) + " bytes");
  std::vector<uint8_t> payload(len);
  if (len && std::fread(payload.data(), 1, len, f_) != len) throw corrupt("truncated frame");
  const uint64_t at = offset_;
  offset_ += sizeof head + len;
  try {
    switch (static_cast<FrameKind>(head[0])) {
      case FrameKind::meta: {
        json j = json::parse(payload.begin(), payload.end());
        RecordingMeta m;
        m.version = j.at("version").get<std::string>();
        m.kernel = j.at("kernel").get<std::string>();
        for (const auto& [fam, strat] : j.at("strategies").items())
          m.strategies.push_back({fam, strat.get<std::string>()});
        m.start_mono_ns = j.at("start_mono_ns").get<uint64_t>();
        m.start_unix_s = j.at("start_unix_s").get<double>();
        return m;
      }
      case FrameKind::event:
        return RecordedEvent{ts, std::move(payload)};
      case FrameKind::settings:
        return RecordedSettings{ts, settings_from_json(json::parse(payload.begin(), payload.end()))};
      case FrameKind::listeners: {
        json j = json::parse(payload.begin(), payload.end());
        RecordedListeners r{ts, j.at("netns").get<uint32_t>(), {}};
        for (const auto& l : j.at("listeners")) r.listeners.push_back(listener_from_json(l));
        return r;
      }
      case FrameKind::census:
      case FrameKind::census_scope: {
        const size_t head_len = static_cast<FrameKind>(head[0]) == FrameKind::census ? 4 : 12;
        if (len < head_len || (len - head_len) % kCensusRecord != 0) throw std::runtime_error("census frame size");
        const uint8_t* p = payload.data();
        RecordedCensus c{ts, get<uint32_t>(p), {}, {}};
        if (head_len == 12) {
          c.scope.states = get<uint32_t>(p);
          c.scope.local_ports.lo = get<uint16_t>(p);
          c.scope.local_ports.hi = get<uint16_t>(p);
          if (c.scope.local_ports.lo > c.scope.local_ports.hi || (c.scope.states & ~0xfffu) != 0)
            throw std::runtime_error("census scope");
        }
        const size_t n = (len - head_len) / kCensusRecord;
        c.sockets.resize(n);
        for (SocketRecord& s : c.sockets) {
          s.family = get<uint16_t>(p);
          std::memcpy(s.saddr.data(), p, 16);
          p += 16;
          std::memcpy(s.daddr.data(), p, 16);
          p += 16;
          s.sport = get<uint16_t>(p);
          s.dport = get<uint16_t>(p);
          s.state = get<uint8_t>(p);
          s.expires_ms = get<uint32_t>(p);
          s.rqueue = get<uint32_t>(p);
          s.wqueue = get<uint32_t>(p);
          s.uid = get<uint32_t>(p);
          s.inode = get<uint32_t>(p);
        }
        return c;
      }
      case FrameKind::losses: {
        if (len != 8 * (CS_EV_TYPE_MAX + 1)) throw std::runtime_error("losses frame size");
        const uint8_t* p = payload.data();
        RecordedLosses r{ts, {}};
        for (uint64_t& v : r.losses.lost_by_type) {
          v = get<uint64_t>(p);
          r.losses.lost_total += v;
        }
        r.losses.map_full = get<uint64_t>(p);
        return r;
      }
      case FrameKind::end:
        return RecordedEnd{ts};
    }
  } catch (const std::exception& e) {
    offset_ = at;
    throw corrupt(e.what());
  }
  offset_ = at;
  throw corrupt("unknown frame kind " + std::to_string(head[0]));
}

uint64_t recording_item_ts(const RecordingItem& item) {
  return std::visit(
      [](const auto& x) -> uint64_t {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, RecordingMeta>)
          return 0;
        else
          return x.ts_ns;
      },
      item);
}

}  // namespace connscope
