// The per-interval view `connscope run` publishes: what the aggregator
// produces once per interval and every exporter (JSON lines, HTTP JSON,
// Prometheus text) and the alert engine read. Plain data, no behaviour.
//
// Two kinds of numbers live side by side:
//  - interval values (`*_interval`, rates, heatmap frames, latency
//    summaries): what happened during the interval that just closed;
//  - cumulative totals (`*_total`, the `*_hist` bucket counts): since the
//    agent started, monotonic, for Prometheus counters and histograms.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "aggregate/histogram.hpp"
#include "host/host_settings.hpp"

namespace connscope {

// Heatmap / histogram metrics, by name.
enum class HeatmapMetric { handshake, port_search, connect_syscall, accept_queue_fill };
inline constexpr std::array<HeatmapMetric, 4> kHeatmapMetrics = {HeatmapMetric::handshake, HeatmapMetric::port_search,
                                                                 HeatmapMetric::connect_syscall,
                                                                 HeatmapMetric::accept_queue_fill};
// "handshake", "port_search", "connect_syscall", "accept_queue_fill"
const char* heatmap_metric_name(HeatmapMetric m);
std::optional<HeatmapMetric> heatmap_metric_from_name(const std::string& name);
// latency_layout() for the three latencies, fill_layout() for the queue fill.
const BucketLayout& heatmap_layout(HeatmapMetric m);

// Quantiles of one interval's samples, in seconds (from LogLinearHistogram,
// relative error <= LogLinearHistogram::kMaxRelativeError).
struct LatencySummary {
  uint64_t count = 0;
  double p50 = 0, p90 = 0, p99 = 0, max = 0;
};

// One metric's distribution: this interval (non-cumulative buckets, the
// heatmap frame) and since start (for Prometheus).
struct Distribution {
  explicit Distribution(HeatmapMetric m) : metric(m), interval(heatmap_layout(m)), total(heatmap_layout(m)) {}
  HeatmapMetric metric;
  BucketCounts interval;   // this interval: the heatmap frame
  BucketCounts total;      // cumulative since start
  LatencySummary summary;  // this interval (latencies only)
};

// The port-exhaustion model of one destination (docs/port-exhaustion-model.md).
struct PortModel {
  bool settings_known = false;  // the destination's netns sysctls were read
  uint16_t range_lo = 0, range_hi = 0;
  uint32_t usable_ports = 0;                  // range minus ip_local_reserved_ports
  uint32_t in_use = 0;                        // connecting + established + time_wait
  double utilization = 0;                     // in_use / usable_ports
  int tw_reuse = 0;                           // net.ipv4.tcp_tw_reuse in the destination's netns
  int timestamps = 0;                         // net.ipv4.tcp_timestamps
  bool reuse_effective = false;               // TIME_WAIT reuse applies to this destination
  double connect_rate = 0;                    // new connections/s over the interval
  double sustainable_rate = 0;                // under the current settings
  double sustainable_rate_without_reuse = 0;  // usable / 60 s
  double sustainable_rate_with_reuse = 0;     // usable / tcp_tw_reuse_delay
  // Seconds until every usable port is busy at the current rate; nullopt
  // when the current rate is sustainable (no exhaustion ahead).
  std::optional<double> time_to_exhaustion_s;
};

struct ProcessShare {
  uint32_t pid = 0;  // tgid
  std::string comm;
  uint64_t attempts = 0;     // connect attempts this process made to the destination (since start)
  uint64_t port_errors = 0;  // of them, failed with EADDRNOTAVAIL/EADDRINUSE this interval
};

struct DestinationKey {
  uint32_t netns = 0;
  uint16_t family = 0;  // AF_INET / AF_INET6; 0 for the `other` row
  std::array<uint8_t, 16> saddr{};
  std::array<uint8_t, 16> daddr{};
  uint16_t dport = 0;
  auto operator<=>(const DestinationKey&) const = default;  // NOLINT(modernize-use-nullptr): defaulted <=>
};

struct DestinationStats {
  DestinationKey key;
  bool other = false;  // the sum of the destinations without a row of their own (--top-destinations)
  std::string src;     // "10.0.0.1", "fd00::1" ("" for other)
  std::string dst;     // "10.0.0.2:443", "[fd00::2]:443" ("other" for other)

  // Since start.
  uint64_t attempts_total = 0;
  uint64_t established_total = 0;
  std::map<std::string, uint64_t> errors_total;       // by errno name ("EADDRNOTAVAIL", ...)
  std::map<std::string, uint64_t> retransmits_total;  // by TCP state name ("established", "syn_sent", ...)

  // This interval.
  uint64_t attempts = 0;
  uint64_t established = 0;
  std::map<std::string, uint64_t> errors;
  std::map<std::string, uint64_t> retransmits;

  // Ports held towards this destination now (events, reconciled).
  uint32_t connecting = 0, open = 0, time_wait = 0;
  // Last reconciliation against sock_diag: signed corrections applied, by state.
  int64_t corrected_connecting = 0, corrected_open = 0, corrected_time_wait = 0;

  PortModel model;
  std::vector<ProcessShare> processes;  // top processes by attempts, at most 3

  Distribution handshake{HeatmapMetric::handshake};
  Distribution port_search{HeatmapMetric::port_search};
  Distribution connect_syscall{HeatmapMetric::connect_syscall};
};

struct ListenerKey {
  uint32_t netns = 0;
  uint16_t family = 0;  // 0: not attributable to one listener
  std::array<uint8_t, 16> addr{};
  uint16_t port = 0;
  auto operator<=>(const ListenerKey&) const = default;  // NOLINT(modernize-use-nullptr): defaulted <=>
};

struct ListenerStats {
  ListenerKey key;
  bool other = false;   // fold-over row, or counts no listener could be named for
  std::string listen;   // "0.0.0.0:8080", "[::]:8080", "other", "unattributed"
  std::string process;  // "nginx (pid 812)": the process holding the listening socket ("": not known)

  uint32_t queue_len = 0;    // accept-queue length at the last sample
  uint32_t queue_peak = 0;   // largest length seen this interval
  uint32_t max_backlog = 0;  // sk_max_ack_backlog

  uint64_t overflows_total = 0, drops_total = 0, synack_retransmits_total = 0, accepts_total = 0;
  uint64_t overflows = 0, drops = 0, synack_retransmits = 0, accepts = 0;  // this interval
  // Retransmits on connections accepted from this listener (inbound traffic).
  uint64_t data_retransmits_total = 0, data_retransmits = 0;
  double accept_rate = 0;  // accepts/s this interval

  Distribution fill{HeatmapMetric::accept_queue_fill};
};

enum class Severity : uint8_t { warning, critical };
enum class AlertState : uint8_t { firing, resolved };
enum class TargetKind : uint8_t { destination, listener, agent };
const char* severity_name(Severity s);       // "warning", "critical"
const char* alert_state_name(AlertState s);  // "firing", "resolved"
const char* target_kind_name(TargetKind k);  // "destination", "listener", "agent"

struct Alert {
  std::string rule;  // "ephemeral_ports_warning", ...
  Severity severity = Severity::warning;
  AlertState state = AlertState::firing;
  TargetKind target_kind = TargetKind::destination;
  std::string target;  // dst label ("10.0.0.2:443"), listen label, or "agent"
  std::string src;     // destination alerts: the source address
  uint32_t netns = 0;
  std::string netns_name;                                // the `ip netns` name, when it has one
  bool in_agent_netns = false;                           // the target is in the agent's own netns
  std::string process;                                   // "nginx (pid 812)": the process that did what the alert says
  std::string summary;                                   // one line
  std::string remedy;                                    // the target's remedy, shared by its alerts
  std::vector<std::string> remedy_commands;              // the remedy's commands, runnable as printed
  std::vector<std::pair<std::string, double>> evidence;  // named numbers, in order
  double since = 0;                                      // unix seconds the alert started firing
  double resolved_at = 0;                                // unix seconds, when state is resolved
};

struct StrategyInUse {
  std::string family;    // "connect", ...
  std::string strategy;  // "fentry", "fallback", ...
};

struct AgentHealth {
  std::map<std::string, uint64_t> events_total;  // by record type ("connect", ...)
  std::map<std::string, uint64_t> lost_total;    // ring-buffer losses by record type
  uint64_t lost_interval = 0;                    // all types, this interval
  uint64_t map_full_total = 0;                   // BPF per-socket state updates refused
  uint64_t decode_errors_total = 0;
  uint64_t self_events_total = 0;      // records of the agent's own HTTP traffic, left out (--watch-self keeps them)
  uint64_t destinations_tracked = 0;   // destinations in the table (--max-destinations)
  uint64_t destinations_own_rows = 0;  // of them, with their own row (--top-destinations)
  uint64_t destinations_folded = 0;    // of them, summed into dst="other" at the last close
  uint64_t destinations_at_risk = 0;   // at risk at the last close (always their own row while slots last)
  uint64_t destinations_at_risk_folded = 0;   // at risk beyond --top-destinations: summed into `other`
  uint64_t destinations_untracked_total = 0;  // first seen while the table was full: counted only in `other`
  double folding_since = 0;                   // unix seconds folding into `other` began (0: never)
  uint64_t listeners_folded_total = 0;
  uint64_t sockets_untracked_total = 0;  // socket table full: ports not counted
  uint64_t reconcile_runs_total = 0;
  std::map<std::string, uint64_t> reconcile_corrections_total;  // by state, absolute values
  std::vector<StrategyInUse> strategies;
  bool replay = false;
};

struct Snapshot {
  uint64_t seq = 0;                            // 1, 2, ... per closed interval
  double timestamp = 0;                        // unix seconds at the end of the interval
  double interval_s = 0;                       // length of the interval
  std::vector<DestinationStats> destinations;  // own rows, at risk first, then by activity; then `other` (if used)
  std::vector<ListenerStats> listeners;
  Distribution handshake{HeatmapMetric::handshake};  // all destinations
  Distribution port_search{HeatmapMetric::port_search};
  Distribution connect_syscall{HeatmapMetric::connect_syscall};
  Distribution accept_queue_fill{HeatmapMetric::accept_queue_fill};  // all listeners
  std::vector<Alert> alerts;                                         // firing now, and those resolved in this interval
  std::map<std::string, uint64_t> alerts_fired_total;                // by rule
  AgentHealth health;
  std::map<uint32_t, NetnsSettings> netns_settings;  // each netns's sysctls and where to enter it
  std::vector<std::string> notices;                  // one-time news for stderr ("folding into other began: ...")
};

}  // namespace connscope
