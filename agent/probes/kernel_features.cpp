// Probes the running kernel once for the capabilities and hook targets the family table needs.
#include "probes/kernel_features.hpp"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace connscope {
namespace {

constexpr const char* default_btf = "/sys/kernel/btf/vmlinux";

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::string errno_text(int err) { return std::string(std::strerror(err)) + " (errno " + std::to_string(err) + ")"; }

// The capability probes attach a no-op program where the family table's
// first hook of that kind attaches, so they test a place connscope uses.
std::string first_target(AttachKind kind) {
  for (const Hook& h : hook_table())
    if (h.kind == kind) return std::string(kind == AttachKind::raw_tp ? tracepoint_name(h.target) : h.target);
  return {};
}

// Minimal "r0 = 0; exit" program.
const bpf_insn return_zero[] = {
    {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0},
    {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
};

// Loads and attaches a no-op fentry (on tcp_v4_connect): the real test of
// whether BPF_PROG_TYPE_TRACING is allowed (lockdown and LSMs refuse it).
void probe_tracing(const btf* vmlinux, KernelFeatures& k) {
  const std::string fn = first_target(AttachKind::fentry);
  int id = btf__find_by_name_kind(vmlinux, fn.c_str(), BTF_KIND_FUNC);
  if (id < 0) {
    k.tracing_error = fn + " not in kernel BTF, cannot test fentry";
    return;
  }
  LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_FENTRY,
              .attach_btf_id = static_cast<__u32>(id));
  int fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, "cs_probe", "GPL", return_zero, 2, &opts);
  if (fd < 0) {
    int err = errno;
    k.tracing_error = "fentry/tp_btf programs refused by the kernel: " + errno_text(err) +
                      (err == EPERM ? ", lockdown or an LSM forbids BPF tracing programs" : "");
    return;
  }
  int link = bpf_link_create(fd, 0, BPF_TRACE_FENTRY, nullptr);
  if (link < 0) {
    k.tracing_error = "fentry attach refused: " + errno_text(errno);
  } else {
    k.tracing = true;
    close(link);
  }
  close(fd);
}

void probe_raw_tp(KernelFeatures& k) {
  int fd = bpf_prog_load(BPF_PROG_TYPE_RAW_TRACEPOINT, "cs_probe", "GPL", return_zero, 2, nullptr);
  if (fd < 0) {
    k.raw_tp_error = "raw tracepoint programs refused: " + errno_text(errno);
    return;
  }
  const std::string tp = first_target(AttachKind::raw_tp);  // inet_sock_set_state
  int link = bpf_raw_tracepoint_open(tp.c_str(), fd);
  if (link < 0) {
    k.raw_tp_error = "raw tracepoint " + tp + " refused: " + errno_text(errno);
  } else {
    k.raw_tp = true;
    close(link);
  }
  close(fd);
}

void probe_kprobes(KernelFeatures& k) {
  if (!exists("/sys/bus/event_source/devices/kprobe/type") && !exists("/sys/kernel/tracing/kprobe_events")) {
    k.kprobes_error =
        "kernel has no kprobes (no kprobe PMU in /sys/bus/event_source/devices, no kprobe_events: "
        "CONFIG_KPROBES is off)";
    return;
  }
  k.kprobes = true;
  const std::set<std::string> wanted = hooked_kernel_functions();
  std::ifstream in("/proc/kallsyms");
  std::string addr, type, name;
  while (in >> addr >> type >> name) {
    if (wanted.contains(name)) k.kallsyms.insert(name);
    in.ignore(4096, '\n');
  }
}

void probe_tracepoints(KernelFeatures& k) {
  std::string err;
  std::string root = ensure_tracefs(&err);
  if (root.empty()) {
    k.tracefs_error = err;
    return;
  }
  k.tracefs = true;
  for (const std::string& tp : hooked_tracepoints())
    if (exists(root + "/events/" + tp + "/id")) k.tracepoints.insert(tp);
}

void probe_cgroup2(KernelFeatures& k) {
  std::ifstream mounts("/proc/mounts");
  std::string line;
  while (std::getline(mounts, line)) {
    std::istringstream fields(line);
    std::string dev, path, type;
    fields >> dev >> path >> type;
    if (type == "cgroup2") {
      k.cgroup2 = true;
      k.cgroup2_path = path;
      break;
    }
  }
  if (!k.cgroup2)
    k.cgroup2_error =
        "no cgroup v2 mount in /proc/mounts (the fallback attaches to it): mount -t cgroup2 none "
        "/sys/fs/cgroup";
  bool addr = libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, nullptr) == 1;
  bool ops = libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SOCK_OPS, nullptr) == 1;
  k.cgroup_progs = addr && ops;
  if (!k.cgroup_progs)
    k.cgroup_progs_error = std::string("kernel refuses ") + (addr ? "" : "cgroup sock_addr ") +
                           (ops ? "" : "sock_ops ") + "programs (CONFIG_CGROUP_BPF off?)";
}

}  // namespace

std::string ensure_tracefs(std::string* error) {
  for (const char* root : {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"})
    if (exists(std::string(root) + "/events")) return root;
  if (::mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, nullptr) == 0 && exists("/sys/kernel/tracing/events"))
    return "/sys/kernel/tracing";
  *error = "tracefs is not mounted and mounting it at /sys/kernel/tracing failed: " + errno_text(errno) +
           "; mount it: mount -t tracefs tracefs /sys/kernel/tracing";
  return {};
}

KernelFeatures probe_kernel(const std::string& btf_path) {
  KernelFeatures k;
  const std::string path = btf_path.empty() ? default_btf : btf_path;
  btf* vmlinux = btf__parse(path.c_str(), nullptr);
  if (!vmlinux) {
    k.btf_error = "no kernel BTF at " + path + ": " + errno_text(errno) +
                  "; pass --btf PATH to a BTF file for this kernel (e.g. from BTFHub)";
  } else {
    k.btf = true;
    const std::set<std::string> wanted = hooked_kernel_functions();
    for (unsigned id = 1; id < btf__type_cnt(vmlinux); id++) {
      const btf_type* t = btf__type_by_id(vmlinux, id);
      const char* name = btf__name_by_offset(vmlinux, t->name_off);
      if (!name || !*name) continue;
      if (btf_is_func(t)) {
        if (wanted.contains(name)) k.btf_functions.insert(name);
      } else if (btf_is_typedef(t) && std::strncmp(name, "btf_trace_", 10) == 0) {
        k.btf_tracepoints.insert(name + 10);
      }
    }
    if (btf_path.empty()) {
      probe_tracing(vmlinux, k);
    } else {
      k.tracing_error = "fentry needs the running kernel's own BTF (--btf given)";
    }
    btf__free(vmlinux);
  }
  k.ringbuf = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nullptr) == 1;
  if (!k.ringbuf) k.ringbuf_error = "kernel has no BPF ring buffer (needs Linux 5.8 or later)";
  probe_raw_tp(k);
  probe_kprobes(k);
  probe_tracepoints(k);
  probe_cgroup2(k);
  return k;
}

}  // namespace connscope
