// The recording file of `connscope record`, read back by `run --replay`.
//
// Layout: the magic line "CONNSCOPE-REC 1\n", then frames of
//   u8 kind, u8 reserved[3], u32 payload length, u64 ts_ns (CLOCK_MONOTONIC), payload
// in host byte order (a recording is read on the architecture that wrote it).
// Payloads:
//   meta      JSON: version, kernel, strategies, start_mono_ns, start_unix_s
//   event     one raw ring-buffer record (include/connscope/events.h), as the BPF side wrote it
//   settings  JSON: one namespace's sysctls (NetnsSettings)
//   listeners JSON: {"netns", "listeners": [...]} one accept-queue poll of a namespace
//   census    packed socket records of one namespace's sock_diag dump
//   losses    cumulative loss counters (u64 per record type, then map_full)
//   end       empty: the recording closed cleanly at ts_ns
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "aggregate/snapshot.hpp"
#include "events/losses.hpp"
#include "host/host_settings.hpp"
#include "host/listener_poller.hpp"
#include "host/socket_census.hpp"

namespace connscope {

inline constexpr char kRecordingMagic[] = "CONNSCOPE-REC 1\n";

// census_scope: a census of only some states and local ports (netns, state
// mask, port lo, port hi, then the records as in census); a census frame
// is every state but LISTEN and every port.
enum class FrameKind : uint8_t {
  meta = 1,
  event = 2,
  settings = 3,
  listeners = 4,
  census = 5,
  losses = 6,
  end = 7,
  census_scope = 8
};

struct RecordingMeta {
  std::string version;
  std::string kernel;
  std::vector<StrategyInUse> strategies;
  uint64_t start_mono_ns = 0;
  double start_unix_s = 0;
};

struct RecordedEvent {
  uint64_t ts_ns;
  std::vector<uint8_t> bytes;
};
struct RecordedSettings {
  uint64_t ts_ns;
  NetnsSettings settings;
};
struct RecordedListeners {
  uint64_t ts_ns;
  uint32_t netns;
  std::vector<ListenerInfo> listeners;
};
struct RecordedCensus {
  uint64_t ts_ns;
  uint32_t netns;
  std::vector<SocketRecord> sockets;
  CensusScope scope{};  // what the dump held
};
struct RecordedLosses {
  uint64_t ts_ns;
  LossCounters losses;
};
struct RecordedEnd {
  uint64_t ts_ns;
};

using RecordingItem = std::variant<RecordingMeta, RecordedEvent, RecordedSettings, RecordedListeners, RecordedCensus,
                                   RecordedLosses, RecordedEnd>;

class RecordingWriter {
 public:
  // Throws std::runtime_error naming the path on failure to create it.
  explicit RecordingWriter(const std::string& path);
  ~RecordingWriter();
  RecordingWriter(const RecordingWriter&) = delete;
  RecordingWriter& operator=(const RecordingWriter&) = delete;

  void meta(const RecordingMeta& m);
  void event(uint64_t ts_ns, std::span<const uint8_t> bytes);
  void settings(uint64_t ts_ns, const NetnsSettings& s);
  void listeners(uint64_t ts_ns, uint32_t netns, const std::vector<ListenerInfo>& l);
  void census(uint64_t ts_ns, uint32_t netns, const std::vector<SocketRecord>& s, CensusScope scope = {});
  void losses(uint64_t ts_ns, const LossCounters& l);
  void end(uint64_t ts_ns);  // also flushes
  void flush();              // throws on a write error (disk full)
  uint64_t frames() const { return frames_; }

 private:
  void frame(FrameKind kind, uint64_t ts_ns, std::span<const uint8_t> payload);
  std::string path_;
  FILE* f_ = nullptr;
  uint64_t frames_ = 0;
};

class RecordingReader {
 public:
  // Throws std::runtime_error naming the path when it cannot be opened or
  // is not a connscope recording.
  explicit RecordingReader(const std::string& path);
  ~RecordingReader();
  RecordingReader(const RecordingReader&) = delete;
  RecordingReader& operator=(const RecordingReader&) = delete;

  // The next item; nullopt at the end of the file. A truncated or corrupt
  // frame throws std::runtime_error with the byte offset.
  std::optional<RecordingItem> next();

 private:
  std::string path_;
  FILE* f_ = nullptr;
  uint64_t offset_ = 0;
};

uint64_t recording_item_ts(const RecordingItem& item);  // 0 for meta

}  // namespace connscope
