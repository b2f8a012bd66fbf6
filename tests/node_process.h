// One `shardfs node` child process, for the integration tests and the benchmarks: started with
// fork/exec on 127.0.0.1:0, ready once it has written its address to its --ready-file, and
// stopped by pid (a signal, then SIGKILL after a bounded wait, then reaped). The destructor
// stops a node still running, and the node gets a death signal if this process dies
// (PR_SET_PDEATHSIG), so no path leaves a node behind. Every wait is bounded.
//
// Thread safety: one thread at a time. REQUIRES: Start is called from a thread that outlives
// the node (the kernel sends the death signal when the forking thread exits).

#ifndef SHARDFS_TESTS_NODE_PROCESS_H_
#define SHARDFS_TESTS_NODE_PROCESS_H_

#include <chrono>
#include <csignal>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

#include "base/status.h"
#include "net/address.h"

namespace shardfs::test {

struct NodeProcessOptions {
  std::string binary;             // the shardfs executable
  std::string data;               // the node's --data folder
  std::vector<std::string> args;  // further flags (--capacity, ...)
  std::string run_dir;            // holds the ready file, and the log if log_to_file
  // true: the node's stdout and stderr go to run_dir/node.log; false: to our stderr.
  bool log_to_file = true;
  int death_signal = SIGKILL;  // what the node gets if this process dies
  std::chrono::milliseconds ready_timeout{10000};
  // --listen: an ephemeral loopback port, or a fixed address (to restart a node where its
  // drive knows it).
  std::string listen = "127.0.0.1:0";
};

class NodeProcess {
 public:
  explicit NodeProcess(NodeProcessOptions options) : options_(std::move(options)) {}
  // Stops the node (SIGTERM, 5 s grace) if it is still running.
  ~NodeProcess();
  NodeProcess(const NodeProcess&) = delete;
  NodeProcess& operator=(const NodeProcess&) = delete;

  // Starts the node and waits for its ready file. The error says why, with the log's tail:
  // the node exited first, did not become ready in time, or wrote a bad address.
  Status Start();
  // Sends `sig`; if the node has not exited after `grace`, sends SIGKILL and waits up to 10 s
  // more. Returns the wait status; NotFound if the node was not running, DeadlineExceeded if it
  // could not be reaped.
  Result<int> Stop(int sig, std::chrono::steady_clock::duration grace);
  // True if the process has not exited (checked without reaping it).
  bool Alive() const;

  pid_t pid() const { return pid_; }
  const net::HostPort& address() const { return address_; }
  uint16_t port() const { return address_.port; }
  const std::string& data() const { return options_.data; }
  // The last `n` bytes of the node's log ("" when it logs to our stderr).
  std::string LogTail(size_t n) const;

 private:
  std::string LogPath() const { return options_.run_dir + "/node.log"; }
  std::optional<int> Reap(std::chrono::steady_clock::duration limit);

  const NodeProcessOptions options_;
  pid_t pid_ = -1;
  net::HostPort address_;
};

// "exit code 0", "signal Killed", ...: a waitpid status for messages.
std::string DescribeWait(int status);

// A "Name:" figure of /proc/PID/status in KiB (e.g. field "VmHWM:"), or -1.
long ProcStatusKiB(pid_t pid, std::string_view field);

}  // namespace shardfs::test

#endif  // SHARDFS_TESTS_NODE_PROCESS_H_
