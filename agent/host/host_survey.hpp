// The agent's user-space look at every network namespace, on its own thread
// (it setns()es): the sysctls of the port-exhaustion model, the listeners'
// accept-queue lengths, a periodic sock_diag census of the TCP sockets (to
// reconcile the ports-in-use counts), and on kernels where BPF cannot see
// accept-queue overflows, the listen-drop attribution of ListenerPoller.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "host/host_settings.hpp"
#include "host/listener_poller.hpp"
#include "host/socket_census.hpp"
#include "host/socket_owners.hpp"
#include "util/clock.hpp"

namespace connscope {

struct SurveyConfig {
  uint32_t netns_filter = 0;           // 0 = every namespace
  double interval_s = 1.0;             // between polls
  bool settings = true;                // read each namespace's sysctls (reported when they change)
  bool listeners = true;               // accept-queue length samples
  bool listener_owners = false;        // name each listener's process (a budgeted /proc/<pid>/fd scan, cached)
  double census_interval_s = 0;        // full socket dumps; 0 = never
  bool accept_queue_fallback = false;  // ListenerPoller overflow attribution
};

struct SurveyBatch {
  std::vector<std::pair<uint64_t, NetnsSettings>> settings;
  using Listeners = ListenerDump;
  std::vector<Listeners> listeners;
  struct Census {
    uint64_t ts_ns;
    uint32_t netns;
    std::vector<SocketRecord> sockets;
    CensusScope scope;  // what the dump held
  };
  std::vector<Census> census;
  std::vector<cs_accept_queue_event> accept_queue;
  bool empty() const { return settings.empty() && listeners.empty() && census.empty() && accept_queue.empty(); }
};

class HostSurvey {
 public:
  explicit HostSurvey(SurveyConfig cfg);
  ~HostSurvey();
  HostSurvey(const HostSurvey&) = delete;
  HostSurvey& operator=(const HostSurvey&) = delete;

  // What the thread gathered since the last call.
  SurveyBatch take();
  // One more poll now (blocks until done), so nothing just before exit is missed.
  void final_poll();
  // The next census dumps every state in every namespace (records were
  // lost: the events cannot be trusted to have shown every close).
  void request_full_census() { full_census_requested_ = true; }

  // Every this many censuses of a namespace, one of every state; the others
  // dump TIME_WAIT only: the one change no event shows (a TIME_WAIT the
  // kernel ends early). The first census of a namespace is full.
  static constexpr uint64_t kFullCensusEvery = 12;

 private:
  void loop();
  void poll_once(uint64_t now_ns);

  SurveyConfig cfg_;
  std::unique_ptr<ListenerPoller> aq_poller_;
  std::unique_ptr<ListenerOwnerCache> owners_;
  std::vector<cs_accept_queue_event> aq_pending_;
  std::map<uint32_t, NetnsSettings> last_settings_;
  uint64_t next_census_ns_ = 0;
  std::map<uint32_t, uint64_t> census_runs_;  // censuses taken per netns
  std::atomic<bool> full_census_requested_{false};
  std::string last_error_;

  std::mutex mu_;
  std::condition_variable cv_;
  SurveyBatch ready_;
  bool stop_ = false;
  bool final_requested_ = false;
  bool failed_ = false;
  std::thread thread_;
};

}  // namespace connscope
