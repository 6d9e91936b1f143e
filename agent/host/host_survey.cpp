// The survey thread: sysctls, listener samples and the socket census of every namespace.
#include "host/host_survey.hpp"

#include <time.h>

#include <cstdio>
#include <cstring>

#include "host/netns.hpp"
#include "util/clock.hpp"

namespace connscope {

namespace {

constexpr uint32_t kListenMask = 1u << CS_TCP_LISTEN;

}  // namespace

HostSurvey::HostSurvey(SurveyConfig cfg) : cfg_(cfg) {
  if (cfg_.accept_queue_fallback)
    aq_poller_ = std::make_unique<ListenerPoller>([this](const cs_accept_queue_event& e) { aq_pending_.push_back(e); },
                                                  cfg_.netns_filter);
  if (cfg_.listeners && cfg_.listener_owners) owners_ = std::make_unique<ListenerOwnerCache>("/proc");
  thread_ = std::thread([this] { loop(); });
}

HostSurvey::~HostSurvey() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

SurveyBatch HostSurvey::take() {
  std::lock_guard lock(mu_);
  return std::exchange(ready_, {});
}

void HostSurvey::final_poll() {
  std::unique_lock lock(mu_);
  if (failed_) return;
  final_requested_ = true;
  cv_.notify_all();
  cv_.wait(lock, [this] { return !final_requested_ || failed_; });
}

void HostSurvey::poll_once(uint64_t now_ns) {
  SurveyBatch batch;
  const bool census_due = cfg_.census_interval_s > 0 && now_ns >= next_census_ns_;
  if (census_due) next_census_ns_ = now_ns + static_cast<uint64_t>(cfg_.census_interval_s * 1e9);
  const bool full_round = census_due && full_census_requested_.exchange(false);
  std::map<uint32_t, uint64_t> census_runs;  // this round's namespaces only: vanished ones are forgotten
  auto census_full = [&](uint32_t netns) {
    auto it = census_runs_.find(netns);
    const uint64_t runs = it == census_runs_.end() ? 0 : it->second;
    census_runs[netns] = runs + 1;
    return full_round || runs % kFullCensusEvery == 0;
  };
  std::vector<std::string> problems;
  if (cfg_.settings || cfg_.listeners || census_due) {
    std::string error;
    // Where each netns is entered from, for the commands remedies print.
    const uint32_t home = cfg_.settings ? current_netns_inode() : 0;
    const std::map<uint32_t, std::string> paths = cfg_.settings ? enumerate_netns() : std::map<uint32_t, std::string>{};
    bool ok = for_each_netns(
        cfg_.netns_filter,
        [&](uint32_t netns) {
          const uint64_t ts = monotonic_now_ns();
          if (cfg_.settings) {
            std::string err;
            if (auto s = read_netns_settings("/proc", &err)) {
              s->netns = netns;
              s->agent_netns = netns == home;
              if (auto p = paths.find(netns); p != paths.end() && !s->agent_netns) s->enter_path = p->second;
              auto it = last_settings_.find(netns);
              if (it == last_settings_.end() || it->second != *s) {
                last_settings_[netns] = *s;
                batch.settings.emplace_back(ts, *s);
              }
            } else {
              problems.push_back("netns " + std::to_string(netns) + ": " + err);
            }
          }
          if (cfg_.listeners) {
            std::vector<SocketRecord> socks;
            if (int r = dump_tcp_sockets(&socks, kListenMask); r == 0) {
              SurveyBatch::Listeners l{ts, netns, {}};
              for (const SocketRecord& s : socks) {
                ListenerInfo info{};
                info.family = s.family;
                info.addr = s.saddr;
                info.port = s.sport;
                info.queue_len = s.rqueue;
                info.max_backlog = s.wqueue;
                info.inode = s.inode;
                l.listeners.push_back(info);
              }
              batch.listeners.push_back(std::move(l));
            } else {
              problems.push_back("netns " + std::to_string(netns) + ": listener dump failed: " + strerror(-r));
            }
          }
          if (census_due) {
            // Only the namespace's ephemeral range: what the port model
            // counts. A gateway's accepted connections (local port 443)
            // and its listeners' sockets are never copied out.
            SurveyBatch::Census c{monotonic_now_ns(), netns, {}, {}};
            if (auto it = last_settings_.find(netns);
                it != last_settings_.end() && it->second.port_lo > 0 && it->second.port_lo <= it->second.port_hi)
              c.scope.local_ports = PortSpan{it->second.port_lo, it->second.port_hi};
            if (!census_full(netns)) c.scope.states = kTimeWaitStates;
            if (int r = dump_tcp_sockets(&c.sockets, c.scope.states, c.scope.local_ports); r == 0)
              batch.census.push_back(std::move(c));
            else
              problems.push_back("netns " + std::to_string(netns) + ": socket census failed: " + strerror(-r));
          }
        },
        &error);
    if (!ok) problems.push_back(error);
    if (census_due && ok) census_runs_ = std::move(census_runs);
    // /proc/<pid>/fd is the same from every netns: one scan for all of them.
    if (owners_) owners_->update(batch.listeners, monotonic_now_ns());
  }
  if (aq_poller_) {
    std::string error;
    if (!aq_poller_->poll_once(&error)) problems.push_back("accept-queue poll: " + error);
  }
  // Report a new problem once, not every second.
  std::string summary = problems.empty() ? "" : problems.front();
  if (!summary.empty() && summary != last_error_)
    fprintf(stderr, "connscope: namespace survey: %s%s\n", summary.c_str(),
            problems.size() > 1 ? (" (and " + std::to_string(problems.size() - 1) + " more)").c_str() : "");
  last_error_ = summary;

  std::lock_guard lock(mu_);
  for (auto& s : batch.settings) ready_.settings.push_back(std::move(s));
  for (auto& l : batch.listeners) ready_.listeners.push_back(std::move(l));
  for (auto& c : batch.census) ready_.census.push_back(std::move(c));
  for (auto& e : aq_pending_) ready_.accept_queue.push_back(e);
  aq_pending_.clear();
}

void HostSurvey::loop() {
  std::unique_lock lock(mu_);
  const auto interval = std::chrono::duration<double>(cfg_.interval_s);
  while (!stop_) {
    lock.unlock();
    poll_once(monotonic_now_ns());
    lock.lock();
    if (final_requested_) {
      final_requested_ = false;
      cv_.notify_all();
    }
    cv_.wait_for(lock, interval, [this] { return stop_ || final_requested_; });
  }
}

}  // namespace connscope
