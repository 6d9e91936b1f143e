// Opens the BPF skeleton, enables one strategy per family, configures the
// in-kernel filters and ring buffer size, loads and attaches. RAII: the
// destructor detaches every link and frees the object.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "connscope/events.h"
#include "events/losses.hpp"
#include "probes/strategy.hpp"

struct connscope_bpf;
struct bpf_link;

namespace connscope {

struct LoaderConfig {
  std::map<Family, Tier> tiers;  // one chosen tier per family
  cs_filter filter{};
  uint32_t ringbuf_bytes = CS_RINGBUF_DEFAULT_BYTES;
  std::string btf_path;  // "" = running kernel's BTF
  std::string cgroup2_path;
  bool all_states = false;
};

// A program of one family failed to load or attach (the loader names it from
// its own bookkeeping): the caller may retry with that family on its next tier.
class StrategyFailure : public std::runtime_error {
 public:
  StrategyFailure(Family f, Tier t, const std::string& what) : std::runtime_error(what), family(f), tier(t) {}
  Family family;
  Tier tier;
};

// Collects libbpf's messages; verbose prints them as they come.
void install_libbpf_logger(bool verbose);
// The last libbpf warnings and errors (for error messages).
std::string recent_libbpf_messages();

class BpfProbes {
 public:
  // Throws StrategyFailure when one family's programs fail to load or attach,
  // std::runtime_error for anything else.
  explicit BpfProbes(const LoaderConfig& cfg);
  ~BpfProbes();
  BpfProbes(const BpfProbes&) = delete;
  BpfProbes& operator=(const BpfProbes&) = delete;

  int ringbuf_fd() const;
  size_t attached_links() const { return links_.size(); }
  LossCounters read_losses() const;

  struct SkelDeleter {
    void operator()(connscope_bpf* s) const;
  };
  struct LinkDeleter {
    void operator()(bpf_link* l) const;
  };

 private:
  std::unique_ptr<connscope_bpf, SkelDeleter> skel_;
  std::vector<std::unique_ptr<bpf_link, LinkDeleter>> links_;
  int cgroup_fd_ = -1;
};

}  // namespace connscope
