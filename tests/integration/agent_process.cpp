// The one spawn helper for the agent under test, and the trace runner over it.
#include "agent_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace itest {

std::string agent_path() {
  auto p = getenv_str("CONNSCOPE_AGENT");
  if (!p)
    throw std::runtime_error(
        "CONNSCOPE_AGENT is not set: set it to the path of the connscope binary, e.g. "
        "CONNSCOPE_AGENT=$PWD/build/connscope build/connscope-itest");
  if (access(p->c_str(), X_OK) != 0)
    throw std::runtime_error("CONNSCOPE_AGENT=" + *p + " is not an executable file: " + errno_str(errno));
  return *p;
}

std::optional<std::string> forced_strategy() {
  auto s = getenv_str("CONNSCOPE_STRATEGY");
  if (!s || *s == "auto") return std::nullopt;
  if (*s != "preferred" && *s != "second" && *s != "fallback")
    throw std::runtime_error("CONNSCOPE_STRATEGY=" + *s + ": expected preferred, second, fallback or auto");
  return s;
}

namespace {

const std::vector<std::string> kFamilies = {"connect", "port_alloc", "state", "retransmit", "accept_queue"};

// Families whose probe rejected the forced tier (asked once per process).
const std::set<std::string>& families_refusing(const std::string& tier) {
  static std::map<std::string, std::set<std::string>> cache;
  auto it = cache.find(tier);
  if (it != cache.end()) return it->second;
  std::set<std::string> refusing;
  CmdResult r = run_agent({"probe", "--json"}, ms(60000));
  if (!r.ok()) throw std::runtime_error("connscope probe --json failed: " + r.err);
  const nlohmann::json probe = nlohmann::json::parse(r.out);  // a named object: the loop borrows from it
  for (const auto& fam : probe.at("families"))
    for (const auto& rej : fam.at("rejected"))
      if (rej.value("tier", "") == tier) refusing.insert(fam.at("family").get<std::string>());
  return cache.emplace(tier, refusing).first->second;
}

}  // namespace

std::optional<std::string> expected_tier(const std::string& family) {
  auto s = forced_strategy();
  if (!s || families_refusing(*s).count(family)) return std::nullopt;
  return s;
}

std::vector<std::string> strategy_args() {
  std::vector<std::string> args;
  for (const auto& fam : kFamilies)
    if (auto t = expected_tier(fam)) args.insert(args.end(), {"--strategy", fam + "=" + *t});
  return args;
}

CmdResult run_agent(const std::vector<std::string>& args, ms timeout) {
  std::vector<std::string> argv{agent_path()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_cmd(argv, scaled(timeout));
}

bool AgentExit::exited_zero() const { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

AgentProcess::AgentProcess(std::vector<std::string> args, const std::string& ready_text, ms ready_timeout) {
  argv_ = {agent_path()};
  for (auto& a : args) {
    for (std::size_t p; (p = a.find("{dir}")) != std::string::npos;) a.replace(p, 5, dir_.path());
    argv_.push_back(a);
  }
  const std::string err_path = dir_.file("stderr.txt"), out_path = dir_.file("stdout.txt");
  started_ns_ = monotonic_ns();
  std::fflush(nullptr);
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork: " + errno_str(errno));
  if (pid_ == 0) {
    child_reset_signals();
    int devnull = open("/dev/null", O_RDONLY);
    int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (devnull < 0 || out < 0 || err < 0) _exit(126);
    dup2(devnull, 0);
    dup2(out, 1);
    dup2(err, 2);
    for (int fd = 3; fd < 1024; fd++) close(fd);
    std::vector<char*> cargs;
    for (auto& a : argv_) cargs.push_back(a.data());
    cargs.push_back(nullptr);
    execv(cargs[0], cargs.data());
    std::fprintf(stderr, "connscope-itest: execv %s: %s\n", cargs[0], std::strerror(errno));
    _exit(127);
  }
  register_child_pid(pid_);
  progress("agent started: " + shell_words(argv_));
  const ms bound = scaled(ready_timeout);
  const auto deadline = Clock::now() + bound;
  for (;;) {
    if (contains(stderr_text(), ready_text)) break;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      reaped_ = true;
      exit_ = AgentExit{status};
      unregister_child_pid(pid_);
      throw std::runtime_error("the agent exited before printing \"" + ready_text + "\" (" + describe_status(status) +
                               ")\n" + describe());
    }
    if (Clock::now() >= deadline) {
      kill(pid_, SIGKILL);
      if (auto st = wait_pid_for(pid_, ms(5000))) {
        reaped_ = true;
        exit_ = AgentExit{*st};
      }
      unregister_child_pid(pid_);
      throw std::runtime_error("the agent did not print \"" + ready_text + "\" within " +
                               std::to_string(bound.count()) + " ms (killed)\n" + describe());
    }
    std::this_thread::sleep_for(ms(10));
  }
  progress("agent ready");
}

AgentProcess::~AgentProcess() {
  if (pid_ > 0 && !reaped_) {
    kill(pid_, SIGKILL);
    wait_pid_for(pid_, ms(5000));
  }
  if (pid_ > 0) unregister_child_pid(pid_);
}

std::string AgentProcess::stderr_text() const { return read_file(dir_.file("stderr.txt")).value_or(""); }

bool AgentProcess::running() {
  if (reaped_) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    reaped_ = true;
    exit_ = AgentExit{status};
    unregister_child_pid(pid_);
    return false;
  }
  return true;
}

AgentExit AgentProcess::stop(int sig) {
  if (!reaped_) {
    kill(pid_, sig);
    const ms bound = scaled(ms(15000));
    auto st = wait_pid_for(pid_, bound);
    if (!st) {
      kill(pid_, SIGKILL);
      wait_pid_for(pid_, ms(5000));
      reaped_ = true;
      unregister_child_pid(pid_);
      throw std::runtime_error(std::string("the agent did not exit within ") + std::to_string(bound.count()) +
                               " ms of " + strsignal(sig) + " (killed)\n" + describe());
    }
    reaped_ = true;
    exit_ = AgentExit{*st};
    unregister_child_pid(pid_);
  }
  progress("agent stopped: " + exit_->describe());
  return *exit_;
}

std::string AgentProcess::describe() const {
  std::ostringstream o;
  o << "agent: " << shell_words(argv_) << "\n";
  if (exit_) o << "agent exit: " << exit_->describe() << "\n";
  std::string err = stderr_text();
  o << "agent stderr:\n" << (err.empty() ? "  <empty>\n" : err);
  if (!err.empty() && err.back() != '\n') o << "\n";
  std::string out = read_file(dir_.file("stdout.txt")).value_or("");
  if (!out.empty()) o << "agent stdout:\n" << out.substr(0, 4000) << "\n";
  return o.str();
}

namespace {
std::vector<std::string> trace_args(const std::vector<std::string>& extra) {
  std::vector<std::string> a = {"trace", "--json", "--output", "{dir}/events.jsonl"};
  for (auto& s : strategy_args()) a.push_back(s);
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}
}  // namespace

AgentRun::AgentRun(const std::vector<std::string>& extra_args)
    : AgentProcess(trace_args(extra_args), "connscope: tracing") {}

Records AgentRun::records_so_far() const {
  return Records::parse(read_file(dir().file("events.jsonl")).value_or(""), false);
}

bool AgentRun::wait_for(const std::function<bool(const Records&)>& pred, ms timeout) const {
  bool ok = wait_until([&] { return pred(records_so_far()); }, scaled(timeout), ms(50));
  progress(ok ? "expected records seen" : "expected records NOT seen within the bound");
  return ok;
}

AgentExit AgentRun::stop(int sig) {
  const AgentExit e = AgentProcess::stop(sig);
  stopped_ns_ = monotonic_ns();
  final_ = Records::parse(read_file(dir().file("events.jsonl")).value_or(""), true);
  return e;
}

}  // namespace itest
