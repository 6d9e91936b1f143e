// Loads the family table's programs for the chosen tiers through the skeleton and attaches them.
#include "probes/loader.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <utility>

#include "connscope.skel.h"

namespace connscope {
namespace {

bool tier_is(const LoaderConfig& cfg, Family f, Tier t) {
  auto it = cfg.tiers.find(f);
  return it != cfg.tiers.end() && it->second == t;
}

// A program to load and attach, with the table row it is loaded for: the
// first row naming it whose family runs that tier (a fallback connect
// program counts against connect if that family uses it, else port_alloc).
struct Enabled {
  bpf_program* prog;
  const Hook* hook;
};

std::vector<Enabled> enabled_programs(const LoaderConfig& cfg, connscope_bpf* skel) {
  std::vector<Enabled> out;
  for (const Hook& h : hook_table()) {
    if (!h.program || !tier_is(cfg, h.family, h.tier)) continue;
    bpf_program* prog = h.program(skel);
    if (std::none_of(out.begin(), out.end(), [&](const Enabled& e) { return e.prog == prog; }))
      out.push_back({prog, &h});
  }
  return out;
}

std::mutex log_mu;
std::deque<std::string> log_lines;
bool log_verbose = false;

int libbpf_log(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG && !log_verbose) return 0;
  static thread_local char buf[1 << 16];
  int n = vsnprintf(buf, sizeof(buf), fmt, args);
  std::lock_guard lock(log_mu);
  if (log_verbose) fprintf(stderr, "libbpf: %s", buf);
  log_lines.emplace_back(buf);
  if (log_lines.size() > 12) log_lines.pop_front();
  return n;
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

namespace {

using Skeleton = std::unique_ptr<connscope_bpf, BpfProbes::SkelDeleter>;

// Opens the object with the configuration in its read-only data and the ring
// buffer sized, every program off.
Skeleton open_configured(const LoaderConfig& cfg) {
  LIBBPF_OPTS(bpf_object_open_opts, open_opts);
  if (!cfg.btf_path.empty()) open_opts.btf_custom_path = cfg.btf_path.c_str();
  Skeleton skel(connscope_bpf__open_opts(&open_opts));
  if (!skel) throw std::runtime_error("cannot open the BPF object: " + std::string(strerror(errno)));

  auto* rodata = skel->rodata;
  rodata->cs_cfg = cfg.filter;
  const_cast<cs_filter&>(rodata->cs_cfg).all_states = cfg.all_states ? 1 : 0;
  rodata->cs_aq_from_state = tier_is(cfg, Family::accept_queue, Tier::fallback) ? 1 : 0;
  rodata->cs_fb_connect = tier_is(cfg, Family::connect, Tier::fallback) ? 1 : 0;
  rodata->cs_fb_port_alloc = tier_is(cfg, Family::port_alloc, Tier::fallback) ? 1 : 0;
  // Wake the reader only once an eighth of the ring waits (1 MiB of the
  // default 8 MiB); it drains every 100 ms anyway (LiveCapture::run).
  rodata->cs_rb_wakeup_bytes = round_ringbuf_size(cfg.ringbuf_bytes) / 8;

  if (bpf_map__set_max_entries(skel->maps.cs_events, round_ringbuf_size(cfg.ringbuf_bytes)) != 0)
    throw std::runtime_error("cannot size the ring buffer to " + std::to_string(cfg.ringbuf_bytes) + " bytes");

  bpf_program* prog;
  bpf_object__for_each_program(prog, skel->obj) bpf_program__set_autoload(prog, false);
  return skel;
}

// After a failed load, which program the kernel refused: libbpf unloads
// everything on failure, so the loader loads the object with no program
// (a failure there is the maps', no program's), then each enabled program
// alone, in table order, each into a fresh object. Returns the first that
// fails, with its error. When several are refused, the plan finds them one
// per retry.
std::optional<std::pair<const Hook*, int>> refused_program(const LoaderConfig& cfg,
                                                           const std::vector<Enabled>& enabled) {
  if (connscope_bpf__load(open_configured(cfg).get()) != 0) return std::nullopt;
  for (const Enabled& e : enabled) {
    Skeleton trial = open_configured(cfg);
    bpf_program__set_autoload(e.hook->program(trial.get()), true);
    if (int err = connscope_bpf__load(trial.get()); err != 0) return std::pair{e.hook, err};
  }
  return std::nullopt;
}

}  // namespace

BpfProbes::BpfProbes(const LoaderConfig& cfg) : skel_(open_configured(cfg)) {
  const std::vector<Enabled> enabled = enabled_programs(cfg, skel_.get());
  for (const Enabled& e : enabled) bpf_program__set_autoload(e.prog, true);

  if (int err = connscope_bpf__load(skel_.get()); err != 0) {
    const std::string messages = recent_libbpf_messages();  // before the trial loads add theirs
    if (auto refused = refused_program(cfg, enabled)) {
      const auto [hook, trial_err] = *refused;
      throw StrategyFailure(hook->family, hook->tier,
                            "loading " + std::string(bpf_program__section_name(hook->program(skel_.get()))) +
                                " failed: " + error_text(-trial_err) + " (run with -v for the verifier log)");
    }
    throw std::runtime_error("loading the BPF programs failed: " + error_text(-err) + "\n" + messages);
  }

  for (const Enabled& e : enabled) {
    bpf_link* link = nullptr;
    if (attaches_to_cgroup(e.hook->kind)) {
      if (cgroup_fd_ < 0) {
        cgroup_fd_ = ::open(cfg.cgroup2_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (cgroup_fd_ < 0)
          throw std::runtime_error("cannot open cgroup v2 root " + cfg.cgroup2_path + ": " + strerror(errno));
      }
      link = bpf_program__attach_cgroup(e.prog, cgroup_fd_);
    } else {
      link = bpf_program__attach(e.prog);
    }
    if (!link) {
      int err = errno;
      throw StrategyFailure(
          e.hook->family, e.hook->tier,
          "attaching " + std::string(bpf_program__section_name(e.prog)) + " failed: " + error_text(err));
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
