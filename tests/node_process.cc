#include "tests/node_process.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace shardfs::test {

using Clock = std::chrono::steady_clock;

NodeProcess::~NodeProcess() {
  if (pid_ > 0) (void)Stop(SIGTERM, std::chrono::seconds(5));
}

Status NodeProcess::Start() {
  if (pid_ > 0) return Status::InvalidArgument("node already running");
  const std::string ready = options_.run_dir + "/ready";
  ::unlink(ready.c_str());
  std::vector<std::string> argv_s = {options_.binary, "node",     "--data",
                                     options_.data,   "--listen", options_.listen,
                                     "--ready-file",  ready};
  argv_s.insert(argv_s.end(), options_.args.begin(), options_.args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  int log = STDERR_FILENO;
  if (options_.log_to_file) {
    log = ::open(LogPath().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log < 0) return PosixError("open " + LogPath(), errno);
  }
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    Status s = PosixError("fork", errno);
    if (options_.log_to_file) ::close(log);
    return s;
  }
  if (pid == 0) {
    // The child: only async-signal-safe calls until exec. Descriptors this process holds
    // (client sockets, other nodes' logs) must not leak into the node.
    ::prctl(PR_SET_PDEATHSIG, options_.death_signal);
    if (::getppid() != parent) ::_exit(127);  // the parent died before prctl
    ::dup2(log, STDOUT_FILENO);
    ::dup2(log, STDERR_FILENO);
    if (::close_range(3, ~0U, 0) != 0) {
      for (int fd = 3; fd < 65536; ++fd) ::close(fd);
    }
    // The parent may block stop signals (to sigwait on them) or ignore SIGPIPE: the node
    // starts with the defaults.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  if (options_.log_to_file) ::close(log);
  pid_ = pid;
  auto deadline = Clock::now() + options_.ready_timeout;
  while (true) {
    std::ifstream in(ready);
    std::string line;
    if (in && std::getline(in, line) && !line.empty()) {
      auto hp = net::ParseHostPort(line);
      if (!hp.ok()) {
        (void)Stop(SIGKILL, std::chrono::seconds(1));
        return Status::Corruption("ready file holds '" + line + "'");
      }
      address_ = *hp;
      return Status::Ok();
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return Status::Unavailable("node exited before it was ready (" + DescribeWait(status) +
                                 "); binary " + options_.binary + "; log:\n" + LogTail(4000));
    }
    if (Clock::now() >= deadline) {
      (void)Stop(SIGKILL, std::chrono::seconds(1));
      return Status::DeadlineExceeded("node not ready within " +
                                      std::to_string(options_.ready_timeout.count()) +
                                      " ms; log:\n" + LogTail(4000));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

Result<int> NodeProcess::Stop(int sig, Clock::duration grace) {
  if (pid_ <= 0) return Status::NotFound("node not running");
  ::kill(pid_, sig);
  std::optional<int> status = Reap(grace);
  if (!status) {
    ::kill(pid_, SIGKILL);
    status = Reap(std::chrono::seconds(10));
  }
  pid_t pid = pid_;
  pid_ = -1;
  if (!status)
    return Status::DeadlineExceeded("node " + std::to_string(pid) + " could not be reaped");
  return *status;
}

std::optional<int> NodeProcess::Reap(Clock::duration limit) {
  auto deadline = Clock::now() + limit;
  while (true) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) return status;
    if (r < 0 && errno != EINTR) return std::nullopt;
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

bool NodeProcess::Alive() const {
  siginfo_t info{};
  return pid_ > 0 &&
         ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
         info.si_pid == 0;
}

std::string NodeProcess::LogTail(size_t n) const {
  if (!options_.log_to_file) return "";
  std::ifstream in(LogPath());
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.size() > n ? s.substr(s.size() - n) : s;
}

std::string DescribeWait(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("signal ") + ::strsignal(WTERMSIG(status));
  return "wait status " + std::to_string(status);
}

long ProcStatusKiB(pid_t pid, std::string_view field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, field.size(), field) == 0) {
      return std::strtol(line.c_str() + field.size(), nullptr, 10);
    }
  }
  return -1;
}

}  // namespace shardfs::test
