// Network namespaces, veth topology, sysctls and nftables for the tests.
// All of it is done from C++ (fork/setns/exec of `ip` and `nft`): the VM has
// no python, sysctl or ss binaries.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util.hpp"

namespace itest {

// `ip netns add NAME` on construction, `ip netns del NAME` on destruction
// (also on a failed assertion: it is an RAII guard).
class Netns {
 public:
  explicit Netns(const std::string& role);  // name: csi-<pid>-<random>-<role>
  ~Netns();
  Netns(const Netns&) = delete;
  Netns& operator=(const Netns&) = delete;

  const std::string& name() const { return name_; }
  std::string path() const { return "/run/netns/" + name_; }
  int fd() const { return fd_; }
  // st_ino of /run/netns/NAME: the nsfs inode the agent reports as `netns`.
  uint64_t inode() const { return inode_; }

  // Run a command inside the namespace; throws with the full output on failure.
  CmdResult run(const std::vector<std::string>& argv, ms timeout = ms(10000), const std::string& input = {}) const;
  // Same, but returns the result instead of throwing.
  CmdResult try_run(const std::vector<std::string>& argv, ms timeout = ms(10000), const std::string& input = {}) const;

  // /proc/sys/<key> resolved in this namespace (e.g. "net/ipv4/tcp_syn_retries").
  void write_sysctl(const std::string& key, const std::string& value) const;
  std::string read_sysctl(const std::string& key) const;
  // A field of /proc/net/netstat or /proc/net/snmp in this namespace,
  // e.g. ("TcpExt", "ListenOverflows"); -1 when not found.
  int64_t netstat_counter(const std::string& group, const std::string& field) const;

 private:
  std::string name_;
  int fd_ = -1;
  uint64_t inode_ = 0;
};

// Temporarily switch the calling thread into a network namespace (sockets
// created and /proc/sys/net files opened meanwhile belong to it). Restores
// the original namespace on destruction.
class NetnsEnter {
 public:
  explicit NetnsEnter(int netns_fd);
  ~NetnsEnter();
  NetnsEnter(const NetnsEnter&) = delete;
  NetnsEnter& operator=(const NetnsEnter&) = delete;

 private:
  int orig_ = -1;
};

// Inode of the calling thread's current network namespace.
uint64_t current_netns_inode();

// Two namespaces, client and server, joined by a veth pair:
//   client veth0 10.A.B.1/24 fd00:c5:A:B::1/64  <->  server veth1 10.A.B.2/24 fd00:c5:A:B::2/64
// lo up in both, IPv6 addresses nodad, links verified up before returning.
class Topology {
 public:
  Topology();
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;

  Netns client{"c"};
  Netns server{"s"};

  std::string client_addr(int af) const;  // canonical text form
  std::string server_addr(int af) const;
  std::string describe() const;

 private:
  int a_ = 0, b_ = 0;
};

// An nftables table `inet cst` in a namespace dropping TCP packets to a port
// on input; removed on destruction (or by remove()).
class NftDrop {
 public:
  // Drops every TCP packet with destination port `dport` arriving in `ns`
  // (SYNs included): nft add rule inet cst input tcp dport P counter drop
  NftDrop(const Netns& ns, uint16_t dport);
  ~NftDrop();
  NftDrop(const NftDrop&) = delete;
  NftDrop& operator=(const NftDrop&) = delete;
  void remove();
  // Packets the rule dropped so far (nft counter), -1 if unknown.
  int64_t dropped_packets() const;

 private:
  const Netns& ns_;
  bool active_ = false;
};

// Canonical text form of an address (inet_pton + inet_ntop); throws on bad input.
std::string canonical_ip(int af, const std::string& text);
const char* family_name(int af);  // "ipv4" / "ipv6"

}  // namespace itest
