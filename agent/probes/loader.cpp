#include "probes/loader.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <deque>
#include <mutex>
#include <stdexcept>

#include "connscope.skel.h"

namespace connscope {
namespace {

struct ProgSpec {
  const char* name;
  Family family;
  Tier tier;
  bool cgroup;  // attached to the cgroup v2 root
};

// Which program belongs to which family and tier. The fallback connect
// programs serve both the connect and the port_alloc families.
constexpr ProgSpec prog_specs[] = {
    {"cs_state_btf", Family::state, Tier::preferred, false},
    {"cs_state_raw", Family::state, Tier::second, false},
    {"cs_state_tp", Family::state, Tier::fallback, false},
    {"cs_connect4_fentry", Family::connect, Tier::preferred, false},
    {"cs_connect4_fexit", Family::connect, Tier::preferred, false},
    {"cs_connect6_fentry", Family::connect, Tier::preferred, false},
    {"cs_connect6_fexit", Family::connect, Tier::preferred, false},
    {"cs_connect4_kprobe", Family::connect, Tier::second, false},
    {"cs_connect4_kretprobe", Family::connect, Tier::second, false},
    {"cs_connect6_kprobe", Family::connect, Tier::second, false},
    {"cs_connect6_kretprobe", Family::connect, Tier::second, false},
    {"cs_fb_connect4", Family::connect, Tier::fallback, true},
    {"cs_fb_connect6", Family::connect, Tier::fallback, true},
    {"cs_fb_sockops", Family::connect, Tier::fallback, true},
    {"cs_fb_sys_exit_connect", Family::connect, Tier::fallback, false},
    {"cs_hash4_fentry", Family::port_alloc, Tier::preferred, false},
    {"cs_hash4_fexit", Family::port_alloc, Tier::preferred, false},
    {"cs_hash6_fentry", Family::port_alloc, Tier::preferred, false},
    {"cs_hash6_fexit", Family::port_alloc, Tier::preferred, false},
    {"cs_hash4_kprobe", Family::port_alloc, Tier::second, false},
    {"cs_hash4_kretprobe", Family::port_alloc, Tier::second, false},
    {"cs_hash6_kprobe", Family::port_alloc, Tier::second, false},
    {"cs_hash6_kretprobe", Family::port_alloc, Tier::second, false},
    {"cs_retrans_btf", Family::retransmit, Tier::preferred, false},
    {"cs_retrans_raw", Family::retransmit, Tier::second, false},
    {"cs_retrans_tp", Family::retransmit, Tier::fallback, false},
    {"cs_synack_btf", Family::retransmit, Tier::preferred, false},
    {"cs_synack_raw", Family::retransmit, Tier::second, false},
    {"cs_synack_tp", Family::retransmit, Tier::fallback, false},
    {"cs_aq_syn_fentry", Family::accept_queue, Tier::preferred, false},
    {"cs_aq_child4_fentry", Family::accept_queue, Tier::preferred, false},
    {"cs_aq_child6_fentry", Family::accept_queue, Tier::preferred, false},
    {"cs_aq_syn_kprobe", Family::accept_queue, Tier::second, false},
    {"cs_aq_child4_kprobe", Family::accept_queue, Tier::second, false},
    {"cs_aq_child6_kprobe", Family::accept_queue, Tier::second, false},
};

bool tier_is(const LoaderConfig& cfg, Family f, Tier t) {
  auto it = cfg.tiers.find(f);
  return it != cfg.tiers.end() && it->second == t;
}

// The family a program failure demotes: a shared fallback connect program
// counts against connect if that family uses it, else against port_alloc.
Family failing_family(const LoaderConfig& cfg, const ProgSpec& spec) {
  if (spec.family == Family::connect && spec.tier == Tier::fallback && !tier_is(cfg, Family::connect, Tier::fallback))
    return Family::port_alloc;
  return spec.family;
}

bool wanted(const LoaderConfig& cfg, const ProgSpec& spec) {
  if (spec.family == Family::connect && spec.tier == Tier::fallback)
    return tier_is(cfg, Family::connect, Tier::fallback) || tier_is(cfg, Family::port_alloc, Tier::fallback);
  return tier_is(cfg, spec.family, spec.tier);
}

std::mutex log_mu;
std::deque<std::string> log_lines;
bool log_verbose = false;
std::string last_failed_prog;  // from libbpf's "prog 'NAME': failed to load"

int libbpf_log(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG && !log_verbose) return 0;
  static thread_local char buf[1 << 16];
  int n = vsnprintf(buf, sizeof(buf), fmt, args);
  std::lock_guard lock(log_mu);
  if (log_verbose) fprintf(stderr, "libbpf: %s", buf);
  std::string_view msg(buf);
  if (auto at = msg.find("prog '");
      at != std::string_view::npos && msg.find("failed to load") != std::string_view::npos) {
    auto end = msg.find('\'', at + 6);
    if (end != std::string_view::npos) last_failed_prog = std::string(msg.substr(at + 6, end - at - 6));
  }
  log_lines.emplace_back(buf);
  if (log_lines.size() > 12) log_lines.pop_front();
  return n;
}

const ProgSpec* spec_named(const std::string& name) {
  for (const auto& spec : prog_specs)
    if (name == spec.name) return &spec;
  return nullptr;
}

std::string error_text(int err) {
  if (err == 524) return "error 524 (ENOTSUPP: this kernel's BPF trampoline cannot attach there)";
  if (const char* name = strerrorname_np(err)) return std::string(name) + " (" + strerror(err) + ")";
  return "error " + std::to_string(err);
}

uint32_t round_ringbuf_size(uint32_t bytes) {
  uint32_t page = static_cast<uint32_t>(sysconf(_SC_PAGESIZE));
  uint32_t size = page;
  while (size < bytes && size < (1u << 30)) size <<= 1;
  return size;
}

}  // namespace

void install_libbpf_logger(bool verbose) {
  log_verbose = verbose;
  libbpf_set_print(libbpf_log);
}

std::string recent_libbpf_messages() {
  std::lock_guard lock(log_mu);
  std::string out;
  for (const auto& l : log_lines) out += "  libbpf: " + l;
  // A verifier log can be huge; its end says what was refused.
  constexpr size_t keep = 3000;
  if (out.size() > keep) out = "  ...\n" + out.substr(out.size() - keep);
  return out;
}

void BpfProbes::SkelDeleter::operator()(connscope_bpf* s) const { connscope_bpf__destroy(s); }
void BpfProbes::LinkDeleter::operator()(bpf_link* l) const { bpf_link__destroy(l); }

BpfProbes::BpfProbes(const LoaderConfig& cfg) {
  LIBBPF_OPTS(bpf_object_open_opts, open_opts);
  if (!cfg.btf_path.empty()) open_opts.btf_custom_path = cfg.btf_path.c_str();
  skel_.reset(connscope_bpf__open_opts(&open_opts));
  if (!skel_) throw std::runtime_error("cannot open the BPF object: " + std::string(strerror(errno)));

  auto* rodata = skel_->rodata;
  rodata->cs_cfg = cfg.filter;
  const_cast<cs_filter&>(rodata->cs_cfg).all_states = cfg.all_states ? 1 : 0;
  rodata->cs_aq_from_state = tier_is(cfg, Family::accept_queue, Tier::fallback) ? 1 : 0;
  rodata->cs_fb_connect = tier_is(cfg, Family::connect, Tier::fallback) ? 1 : 0;
  rodata->cs_fb_port_alloc = tier_is(cfg, Family::port_alloc, Tier::fallback) ? 1 : 0;

  if (bpf_map__set_max_entries(skel_->maps.cs_events, round_ringbuf_size(cfg.ringbuf_bytes)) != 0)
    throw std::runtime_error("cannot size the ring buffer to " + std::to_string(cfg.ringbuf_bytes) + " bytes");

  std::vector<const ProgSpec*> enabled;
  for (const auto& spec : prog_specs) {
    bpf_program* prog = bpf_object__find_program_by_name(skel_->obj, spec.name);
    if (!prog) throw std::runtime_error(std::string("BPF object lacks program ") + spec.name);
    bool on = wanted(cfg, spec);
    bpf_program__set_autoload(prog, on);
    if (on) enabled.push_back(&spec);
  }

  {
    std::lock_guard lock(log_mu);
    last_failed_prog.clear();
  }
  if (int err = connscope_bpf__load(skel_.get()); err != 0) {
    std::string failed;
    {
      std::lock_guard lock(log_mu);
      failed = last_failed_prog;
    }
    if (const ProgSpec* spec = spec_named(failed))
      throw StrategyFailure(
          failing_family(cfg, *spec), spec->tier,
          "loading " +
              std::string(bpf_program__section_name(bpf_object__find_program_by_name(skel_->obj, spec->name))) +
              " failed: " + error_text(-err) + " (run with -v for the verifier log)");
    throw std::runtime_error("loading the BPF programs failed: " + error_text(-err) + "\n" + recent_libbpf_messages());
  }

  for (const ProgSpec* spec : enabled) {
    bpf_program* prog = bpf_object__find_program_by_name(skel_->obj, spec->name);
    bpf_link* link = nullptr;
    if (spec->cgroup) {
      if (cgroup_fd_ < 0) {
        cgroup_fd_ = ::open(cfg.cgroup2_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (cgroup_fd_ < 0)
          throw std::runtime_error("cannot open cgroup v2 root " + cfg.cgroup2_path + ": " + strerror(errno));
      }
      link = bpf_program__attach_cgroup(prog, cgroup_fd_);
    } else {
      link = bpf_program__attach(prog);
    }
    if (!link) {
      int err = errno;
      throw StrategyFailure(
          failing_family(cfg, *spec), spec->tier,
          "attaching " + std::string(bpf_program__section_name(prog)) + " failed: " + error_text(err));
    }
    links_.emplace_back(link);
  }
}

BpfProbes::~BpfProbes() {
  links_.clear();
  if (cgroup_fd_ >= 0) ::close(cgroup_fd_);
}

int BpfProbes::ringbuf_fd() const { return bpf_map__fd(skel_->maps.cs_events); }

LossCounters BpfProbes::read_losses() const {
  LossCounters out;
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return out;
  std::vector<uint64_t> values(static_cast<size_t>(ncpu));
  int lost_fd = bpf_map__fd(skel_->maps.cs_lost);
  for (uint32_t type = 0; type < CS_EV_TYPE_MAX; type++) {
    if (bpf_map_lookup_elem(lost_fd, &type, values.data()) != 0) continue;
    for (uint64_t v : values) out.lost_by_type[type] += v;
    out.lost_total += out.lost_by_type[type];
  }
  uint32_t zero = 0;
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.cs_map_full), &zero, values.data()) == 0)
    for (uint64_t v : values) out.map_full += v;
  return out;
}

}  // namespace connscope
