#include "cli/local_network.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/file.h"
#include "cli/drive_open.h"
#include "cli/exit.h"
#include "net/address.h"

namespace shardfs::cli {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr size_t kMaxListFile = 1 << 20;
constexpr int kMaxNodes = 64;
constexpr auto kStartWait = std::chrono::seconds(15);
constexpr auto kStopWait = std::chrono::seconds(30);

std::string ListFile(const DriveHome& home) { return LocalNetworkDir(home) + "/nodes.json"; }

// True if something accepts TCP connections at 127.0.0.1:`port`.
bool Answers(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  ::close(fd);
  return ok;
}

// The port of a node's address, which ReadLocalNetwork or CreateLocalNetwork checked.
uint16_t PortOf(const std::string& address) { return net::ParseHostPort(address).value().port; }

// `count` distinct loopback ports free now (bound, read, released together).
Result<std::vector<uint16_t>> FreePorts(int count) {
  std::vector<int> fds;
  std::vector<uint16_t> ports;
  Status failed;
  for (int i = 0; i < count && failed.ok(); ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      failed = PosixError("pick a loopback port", errno);
    } else {
      ports.push_back(ntohs(a.sin_port));
    }
    if (fd >= 0) fds.push_back(fd);
  }
  for (int fd : fds) ::close(fd);
  if (!failed.ok()) return failed;
  return ports;
}

// The pid in `dir`/pid, 0 if none.
pid_t PidInFile(const LocalNode& node) {
  std::ifstream in(node.dir + "/pid");
  long pid = 0;
  if (!(in >> pid) || pid <= 0) return 0;
  return static_cast<pid_t>(pid);
}

// The pid in `dir`/pid if that process is the node of `dir` (its command line names the
// folder: a pid the system gave to another process since is not ours); 0 otherwise.
pid_t RunningPid(const LocalNode& node) {
  const pid_t pid = PidInFile(node);
  if (pid == 0) return 0;
  std::ifstream cmd("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::string line((std::istreambuf_iterator<char>(cmd)), std::istreambuf_iterator<char>());
  return line.find(node.dir + "/data") == std::string::npos ? 0 : static_cast<pid_t>(pid);
}

// Starts the node as a daemon: its own session, detached from this process (which may end at
// once), stdout and stderr to its log, its pid in `dir`/pid.
Status Spawn(const LocalNode& node) {
  const std::string exe = fs::read_symlink("/proc/self/exe").string();
  const std::vector<std::string> args = {
      exe,         "node",       "--data",       node.dir + "/data",
      "--listen",  node.address, "--capacity",   node.capacity,
      "--reserve", "1G",         "--ready-file", node.dir + "/ready"};
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const std::string log = node.dir + "/node.log", pid_file = node.dir + "/pid";
  // Gone first: the wait for the start reads them (a node that ended leaves its pid).
  ::unlink((node.dir + "/ready").c_str());
  ::unlink(pid_file.c_str());
  // What the grandchild does uses only async-signal-safe calls (the parent may have threads).
  const pid_t child = ::fork();
  if (child < 0) return PosixError("fork", errno);
  if (child == 0) {
    ::setsid();
    const pid_t grandchild = ::fork();
    if (grandchild != 0) ::_exit(grandchild > 0 ? 0 : 1);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    const int in = ::open("/dev/null", O_RDONLY);
    const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (in < 0 || out < 0) ::_exit(126);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(out, 2);
    const int pf = ::open(pid_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (pf >= 0) {
      char digits[24];
      int n = 0;
      for (pid_t p = ::getpid(); p > 0; p /= 10) digits[n++] = static_cast<char>('0' + p % 10);
      char text[24];
      for (int i = 0; i < n; ++i) text[i] = digits[n - 1 - i];
      text[n] = '\n';
      (void)!::write(pf, text, static_cast<size_t>(n + 1));
      ::close(pf);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Status::Unavailable("could not start the node at " + node.address);
  }
  return Status::Ok();
}

// Present while `shardfs local-network stop I` holds the node down.
std::string HeldFile(const LocalNode& node) { return node.dir + "/held"; }

std::string LastLine(const std::string& path) {
  std::ifstream in(path);
  std::string line, last;
  while (std::getline(in, line)) {
    if (!line.empty()) last = line;
  }
  return last.empty() ? "(its log is empty)" : last;
}

}  // namespace

Result<std::vector<LocalNode>> ReadLocalNetwork(const DriveHome& home) {
  if (!fs::exists(ListFile(home))) return Status::NotFound("the drive has no local network");
  SFS_ASSIGN_OR_RETURN(Bytes raw, ReadFile(ListFile(home), kMaxListFile));
  json j = json::parse(raw.begin(), raw.end(), nullptr, /*allow_exceptions=*/false);
  auto bad = [&](const std::string& why) {
    return Status::Corruption(ListFile(home) + ": " + why);
  };
  if (!j.is_object() || j.value("version", 0) != 1 || !j.contains("nodes") ||
      !j["nodes"].is_array() || j["nodes"].size() > kMaxNodes) {
    return bad("not a list of local nodes (version 1)");
  }
  std::vector<LocalNode> nodes;
  for (size_t i = 0; i < j["nodes"].size(); ++i) {
    const json& n = j["nodes"][i];
    const std::string address = n.is_object() ? n.value("address", "") : "";
    const std::string capacity = n.is_object() ? n.value("capacity", "") : "";
    auto parsed = net::ParseHostPort(address);
    if (!parsed.ok() || parsed->host != "127.0.0.1" || capacity.empty()) {
      return bad("node " + std::to_string(i + 1) + " is not a loopback address and a capacity");
    }
    nodes.push_back({address, LocalNetworkDir(home) + "/node" + std::to_string(i + 1), capacity});
  }
  return nodes;
}

Result<std::vector<LocalNode>> CreateLocalNetwork(const DriveHome& home, int count,
                                                  const std::string& capacity) {
  if (fs::exists(ListFile(home))) {
    return Status::AlreadyExists("the drive has a local network already (" + ListFile(home) + ")");
  }
  if (count < 1 || count > kMaxNodes) {
    return Status::InvalidArgument("a local network has 1 to " + std::to_string(kMaxNodes) +
                                   " nodes");
  }
  SFS_ASSIGN_OR_RETURN(std::vector<uint16_t> ports, FreePorts(count));
  std::error_code ec;
  fs::create_directories(LocalNetworkDir(home), ec);
  if (ec) return PosixError("create " + LocalNetworkDir(home), ec.value());
  fs::permissions(LocalNetworkDir(home), fs::perms::owner_all, ec);
  json list = {{"version", 1}, {"nodes", json::array()}};
  std::vector<LocalNode> nodes;
  for (int i = 0; i < count; ++i) {
    LocalNode n{"127.0.0.1:" + std::to_string(ports[static_cast<size_t>(i)]),
                LocalNetworkDir(home) + "/node" + std::to_string(i + 1), capacity};
    fs::create_directories(n.dir, ec);
    if (ec) return PosixError("create " + n.dir, ec.value());
    list["nodes"].push_back({{"address", n.address}, {"capacity", n.capacity}});
    nodes.push_back(std::move(n));
  }
  const std::string text = list.dump(2) + "\n";
  SFS_RETURN_IF_ERROR(WriteFileAtomic(ListFile(home), AsBytes(text), 0600));
  SFS_RETURN_IF_ERROR(StartLocalNetwork(nodes));
  return nodes;
}

Status StartLocalNetwork(const std::vector<LocalNode>& nodes, HeldNodes held) {
  std::vector<const LocalNode*> started;
  for (const LocalNode& n : nodes) {
    if (held == HeldNodes::kRelease) {
      ::unlink(HeldFile(n).c_str());
    } else if (fs::exists(HeldFile(n))) {
      continue;
    }
    if (Answers(PortOf(n.address))) continue;
    SFS_RETURN_IF_ERROR(Spawn(n).WithContext("the drive's local network"));
    started.push_back(&n);
  }
  const auto deadline = std::chrono::steady_clock::now() + kStartWait;
  for (const LocalNode* n : started) {
    while (!fs::exists(n->dir + "/ready")) {
      // The pid file is the started node's own (removed before the start): if that process
      // is gone, the node ended.
      const pid_t pid = PidInFile(*n);
      if (std::chrono::steady_clock::now() > deadline || (pid > 0 && ::kill(pid, 0) != 0)) {
        return Status::Unavailable("the drive's local network: the node at " + n->address +
                                   " did not start: " + LastLine(n->dir + "/node.log"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  return Status::Ok();
}

Result<int> StopLocalNetwork(const std::vector<LocalNode>& nodes, bool hold) {
  std::vector<std::pair<pid_t, const LocalNode*>> running;
  for (const LocalNode& n : nodes) {
    // Held first, so that no command starts it again while it stops.
    if (hold) {
      SFS_RETURN_IF_ERROR(WriteFileAtomic(
          HeldFile(n), AsBytes(std::string("held down by shardfs local-network stop\n")), 0600));
    }
    if (pid_t pid = RunningPid(n); pid > 0 && ::kill(pid, SIGTERM) == 0) {
      running.emplace_back(pid, &n);
    } else {
      ::unlink((n.dir + "/pid").c_str());  // a node that ended on its own
    }
  }
  const auto deadline = std::chrono::steady_clock::now() + kStopWait;
  for (const auto& [pid, node] : running) {
    while (::kill(pid, 0) == 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (::kill(pid, 0) == 0) ::kill(pid, SIGKILL);
    ::unlink((node->dir + "/pid").c_str());
  }
  return static_cast<int>(running.size());
}

std::function<int()> AddLocalNetworkCommand(CLI::App& app) {
  struct Flags {
    DriveFlags drive;
    std::string action;
    std::vector<int> which;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand(
      "local-network",
      "Start or stop the drive's own storage nodes on this machine (shardfs init "
      "--local-network).");
  cmd->add_option("action", f->action, "start or stop")
      ->required()
      ->check(CLI::IsMember({"start", "stop"}));
  cmd->add_option("node", f->which,
                  "Only these nodes, by number (1 to N); stopped so, a node stays down until "
                  "`start` (other commands start only the nodes not held down)");
  AddDriveFlags(cmd, &f->drive);
  return [f] {
    auto home = ResolveDriveHome(f->drive.home, f->drive.drive);
    if (!home.ok()) return Failure("local-network", "find the drive", home.status());
    auto all = ReadLocalNetwork(*home);
    if (!all.ok()) return Failure("local-network", f->action, all.status());
    std::vector<LocalNode> nodes;
    // Each node once, however often named (a node started twice would lose its pid file).
    std::sort(f->which.begin(), f->which.end());
    f->which.erase(std::unique(f->which.begin(), f->which.end()), f->which.end());
    for (int i : f->which) {
      if (i < 1 || static_cast<size_t>(i) > all->size()) {
        return UsageError("local-network", "no node " + std::to_string(i) + ": the drive has " +
                                               std::to_string(all->size()) + " (1 to " +
                                               std::to_string(all->size()) + ")");
      }
      nodes.push_back((*all)[static_cast<size_t>(i - 1)]);
    }
    const bool some = !nodes.empty();
    if (!some) nodes = *all;
    if (f->action == "start") {
      if (Status s = StartLocalNetwork(nodes, HeldNodes::kRelease); !s.ok()) {
        return Failure("local-network", "start", s);
      }
      if (some) {
        std::printf("%zu of the drive's %zu local nodes run.\n", nodes.size(), all->size());
      } else {
        std::printf("The drive's %zu local nodes run.\n", nodes.size());
      }
      return 0;
    }
    auto stopped = StopLocalNetwork(nodes, /*hold=*/some);
    if (!stopped.ok()) return Failure("local-network", "stop", stopped.status());
    if (some) {
      std::printf(
          "Stopped %d of the %zu nodes named (the others were not running); they stay "
          "down until `shardfs local-network start`.\n",
          *stopped, nodes.size());
    } else {
      std::printf("Stopped %d of the drive's %zu local nodes (the others were not running).\n",
                  *stopped, nodes.size());
    }
    return 0;
  };
}

}  // namespace shardfs::cli
