// Reconciliation: corrects the port table against a sock_diag census of one
// netns, for what the events cannot show (sockets older than the agent,
// closes lost to a full ring buffer, a TIME_WAIT the kernel ended early),
// and keeps the corrections per destination and in total.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "aggregate/destinations.hpp"
#include "aggregate/listeners.hpp"
#include "aggregate/port_table.hpp"
#include "host/host_settings.hpp"
#include "host/socket_census.hpp"

namespace connscope {

// What a reconciliation changed.
struct ReconcileResult {
  uint64_t added = 0, removed = 0, restated = 0;
};

class Reconciler {
 public:
  Reconciler(DestinationTable& destinations, ListenerTable& listeners, PortTable& ports)
      : destinations_(destinations), listeners_(listeners), ports_(ports) {}

  // Compares the tracked sockets of every destination in `netns` with a
  // sock_diag dump taken at `dump_ts_ns` and corrects the table (sockets
  // touched by events after the dump are left alone). Sockets to untracked
  // destinations start being tracked when their local port is in the
  // netns's ephemeral range (`settings`, nullptr when unknown), their remote
  // port is not, and the local port is not a listening port. The dump held
  // only the sockets of `scope` (states, local ports): tracked sockets it
  // could not have held are left as they are. Sockets for which `skip` is true are ignored
  // (the agent's own HTTP traffic).
  using Skip = std::function<bool(const SocketRecord&)>;
  ReconcileResult reconcile(uint32_t netns, const NetnsSettings* settings, const std::vector<SocketRecord>& sockets,
                            uint64_t dump_ts_ns, CensusScope scope = {}, const Skip& skip = {});

  uint64_t runs_total() const { return runs_total_; }
  // By state name, absolute values.
  const std::map<std::string, uint64_t>& corrections_total() const { return corrections_total_; }

 private:
  DestinationTable& destinations_;
  ListenerTable& listeners_;
  PortTable& ports_;
  uint64_t runs_total_ = 0;
  std::map<std::string, uint64_t> corrections_total_;
};

}  // namespace connscope
