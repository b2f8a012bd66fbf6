#include "cli/node_command.h"

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <fmt/ranges.h>
#include <pthread.h>
#include <signal.h>

#include "backend/scrubber.h"
#include "backend/shardstore.h"
#include "base/file.h"
#include "base/logging.h"
#include "base/units.h"
#include "base/version.h"
#include "cli/exit.h"
#include "net/address.h"
#include "net/gossip_agent.h"
#include "net/http_server.h"
#include "net/node_identity.h"
#include "net/node_service.h"

namespace shardfs::cli {

namespace {

struct NodeFlags {
  std::string data;
  std::string listen = "127.0.0.1:7070";
  std::string capacity;
  std::string reserve = "1G";
  std::string max_shard_size = "64M";
  std::string owner_quota = "0";
  std::string scrub_rate = "16MiB";
  std::vector<std::string> allow_owners;
  std::vector<std::string> join;
  std::string advertise;
  double gossip_period = 1;
  double gossip_ping_timeout = 0.3;
  int gossip_indirect = 3;
  double gossip_suspicion_mult = 4;
  double gossip_republish = 60;
  double push_pull_interval = 30;
  double leave_linger = 1;
  int threads = 8;
  size_t max_connections = 256;
  double header_timeout = 10;
  double idle_timeout = 60;
  double io_timeout = 30;
  double drain_timeout = 10;
  int64_t clock_skew = 120;
  std::string log_level = "info";
  std::string ready_file;
  std::string config;
  bool print_id = false;
  bool test_flip_served_bytes = false;
  double test_gossip_delay_ms = 0;
};

int Fail(const std::string& what, const Status& s) { return Failure("node", what, s); }
int Usage(const std::string& msg) { return UsageError("node", msg); }

std::chrono::milliseconds Millis(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

// Sets every option the command line left unset from the config file `path` (TOML: `key =
// value` lines, keys as the long options without dashes, optionally under a [node] section).
// The command line wins over the file. Returns an error message, or "" on success.
std::string ApplyConfig(CLI::App* cmd, const std::string& path) {
  std::vector<CLI::ConfigItem> items;
  try {
    items = CLI::ConfigTOML().from_file(path);
  } catch (const CLI::Error& e) {
    return "--config " + path + ": " + e.what();
  }
  for (const auto& item : items) {
    if (item.name == "++" || item.name == "--") continue;  // section markers
    if (!item.parents.empty() && item.parents != std::vector<std::string>{"node"}) {
      return "--config " + path + ": unknown section [" + item.parents.front() + "]";
    }
    CLI::Option* op = cmd->get_option_no_throw("--" + item.name);
    if (op == nullptr || item.name == "config" || item.name == "print-id" || item.name == "help") {
      return "--config " + path + ": unknown key '" + item.name + "'";
    }
    if (op->count() > 0) continue;
    try {
      op->add_result(item.inputs);
      op->run_callback();
    } catch (const CLI::Error& e) {
      return "--config " + path + ": " + item.name + ": " + e.what();
    }
  }
  return "";
}

int RunNode(const NodeFlags& f) {
  if (f.data.empty()) return Usage("--data is required (the node's data folder)");
  auto level = log::ParseLevel(f.log_level);
  if (!level.ok()) return Usage(level.status().message());
  log::Options lo;
  lo.level = *level;
  (void)log::Init(lo);

  if (f.print_id) {
    auto key = net::LoadOrCreateNodeKey(f.data);
    if (!key.ok()) return Fail("node key", key.status());
    std::printf("%s\n", crypto::NodeIdOf(key->public_key()).ToHex().c_str());
    return 0;
  }

  // Every number is checked before anything is created on disk.
  if (f.capacity.empty()) return Usage("--capacity is required (e.g. --capacity 100G)");
  backend::ShardStoreOptions so;
  so.dir = f.data;
  backend::ScrubberOptions scrub;
  struct Size {
    const char* flag;
    const std::string& text;
    uint64_t* out;
  };
  for (Size s :
       {Size{"--capacity", f.capacity, &so.capacity}, Size{"--reserve", f.reserve, &so.reserve},
        Size{"--max-shard-size", f.max_shard_size, &so.max_shard_size},
        Size{"--owner-quota", f.owner_quota, &so.owner_quota},
        Size{"--scrub-rate", f.scrub_rate, &scrub.rate}}) {
    auto v = ParseByteSize(s.text);
    if (!v.ok()) return Usage(std::string(s.flag) + ": " + v.status().message());
    *s.out = *v;
  }
  if (so.capacity == 0) return Usage("--capacity must be above 0");
  if (so.max_shard_size == 0 || so.max_shard_size > (uint64_t{1} << 30)) {
    return Usage("--max-shard-size must be between 1 byte and 1 GiB");
  }
  auto listen = net::ParseHostPort(f.listen, /*allow_zero_port=*/true);
  if (!listen.ok()) return Usage("--listen: " + listen.status().message());
  net::NodeServiceOptions no;
  no.verifier.max_skew_seconds = f.clock_skew;
  no.test_flip_served_bytes = f.test_flip_served_bytes;
  for (const auto& hex : f.allow_owners) {
    auto k = crypto::PublicKey::FromHex(hex);
    if (!k.ok()) return Usage("--allow-owner: '" + hex + "' is not a 64-hex-digit owner key");
    no.allowed_owners.insert(*k);
  }
  if (f.threads < 1 || f.threads > 256) return Usage("--threads must be 1 to 256");
  if (f.max_connections < 1) return Usage("--max-connections must be at least 1");
  for (double t : {f.header_timeout, f.idle_timeout, f.io_timeout}) {
    if (!(t > 0 && t <= 3600)) return Usage("timeouts must be above 0 and at most 3600 seconds");
  }
  if (!(f.drain_timeout >= 0 && f.drain_timeout <= 3600)) {
    return Usage("--drain-timeout must be 0 to 3600 seconds");
  }
  if (f.clock_skew < 1 || f.clock_skew > 86400) return Usage("--clock-skew must be 1 to 86400");
  net::GossipAgentOptions ga;
  ga.gossip.period = Millis(f.gossip_period);
  ga.gossip.ping_timeout = Millis(f.gossip_ping_timeout);
  ga.gossip.indirect_fanout = f.gossip_indirect;
  ga.gossip.suspicion_mult = f.gossip_suspicion_mult;
  ga.gossip.republish = Millis(f.gossip_republish);
  ga.gossip.gossip_interval = std::min(ga.gossip.gossip_interval, ga.gossip.period);
  if (Status g = net::ValidateGossipOptions(ga.gossip); !g.ok()) return Usage(g.message());
  if (!(f.push_pull_interval >= 0.1 && f.push_pull_interval <= 86400)) {
    return Usage("--push-pull-interval must be 0.1 to 86400 seconds");
  }
  ga.push_pull_interval = Millis(f.push_pull_interval);
  if (!(f.leave_linger >= 0 && f.leave_linger <= 60)) {
    return Usage("--leave-linger must be 0 to 60 seconds");
  }
  for (const auto& j : f.join) {
    if (!net::ParseHostPort(j).ok()) return Usage("--join: '" + j + "' is not HOST:PORT");
  }
  ga.join = f.join;
  if (!(f.test_gossip_delay_ms >= 0 && f.test_gossip_delay_ms <= 10000)) {
    return Usage("--test-gossip-delay-ms must be 0 to 10000");
  }
  ga.test_send_delay =
      std::chrono::microseconds(static_cast<int64_t>(f.test_gossip_delay_ms * 1000));
  if (!f.advertise.empty() && !net::ParseHostPort(f.advertise).ok()) {
    return Usage("--advertise: '" + f.advertise + "' is not HOST:PORT");
  }
  if (f.advertise.empty() && (listen->host == "0.0.0.0" || listen->host == "::")) {
    return Usage("--listen " + f.listen +
                 " listens on every address: give --advertise HOST:PORT, the address other "
                 "nodes and clients reach this node at");
  }

  // SIGINT and SIGTERM are taken by sigwait below; block them before any thread starts so
  // that every thread inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  // A client that disconnects mid-write must not kill the node.
  ::signal(SIGPIPE, SIG_IGN);

  // The store takes the folder's lock first, so two nodes never share a folder or a key.
  std::error_code ec;
  std::filesystem::create_directories(f.data, ec);
  if (ec) return Fail("create " + f.data, Status::IOError(ec.message()));
  auto store = backend::ShardStore::Open(so);
  if (!store.ok()) return Fail("open " + f.data, store.status());
  auto key = net::LoadOrCreateNodeKey(f.data);
  if (!key.ok()) return Fail("node key", key.status());
  NodeId id = crypto::NodeIdOf(key->public_key());
  backend::Scrubber scrubber(store->get(), scrub);
  no.scrubber = &scrubber;
  net::NodeService service(store->get(), id, no);
  net::HttpServerOptions ho;
  ho.address = listen->host;
  ho.port = listen->port;
  ho.threads = f.threads;
  ho.max_connections = f.max_connections;
  ho.header_timeout = Millis(f.header_timeout);
  ho.idle_timeout = Millis(f.idle_timeout);
  ho.io_timeout = Millis(f.io_timeout);
  net::HttpServer server(ho, &service);
  Status s = server.Start();
  if (!s.ok()) return Fail("listen on " + f.listen, s);
  net::HostPort bound{listen->host, server.port()};
  backend::ShardStoreStats st = (*store)->Stats();
  net::GossipSelf self;
  self.address = f.advertise.empty() ? bound.ToString() : f.advertise;
  backend::ShardStore* store_ptr = store->get();
  ga.space = [store_ptr] {
    backend::ShardStoreStats now = store_ptr->Stats();
    return std::make_pair(now.capacity, now.free);
  };
  auto agent = net::GossipAgent::Start(*key, self, bound, ga);
  if (!agent.ok()) {
    server.Stop(std::chrono::milliseconds(0));
    return Fail("gossip on " + bound.ToString(), agent.status());
  }
  service.SetMembership(agent->get());
  log::Info("shardfs node {} (version {}) serving {} on {}: capacity {}, {} shard(s), {} free",
            id.ToHex(), kVersion, f.data, bound.ToString(), FormatByteSize(st.capacity), st.shards,
            FormatByteSize(st.free));
  if (!f.join.empty()) log::Info("joining the network through {}", fmt::join(f.join, ", "));
  if (scrub.rate == 0) log::Info("scrubbing is off (--scrub-rate 0)");
  scrubber.Start();
  if (!f.ready_file.empty()) {
    std::string line = bound.ToString() + "\n";
    Status w = WriteFileAtomic(f.ready_file, AsBytes(line), 0644);
    if (!w.ok()) {
      scrubber.Stop();
      server.Stop(std::chrono::milliseconds(0));
      return Fail("write --ready-file", w);
    }
  }
  int sig = 0;
  sigwait(&stop_signals, &sig);
  log::Info("{} received: finishing requests in progress (up to {} s), then stopping",
            sig == SIGTERM ? "SIGTERM" : "SIGINT", f.drain_timeout);
  scrubber.Stop();  // prompt: it stops after the piece it is reading
  // Tell the network first, so this is a leave and not a failure; then drain.
  (*agent)->Leave(Millis(f.leave_linger));
  server.Stop(Millis(f.drain_timeout));
  service.SetMembership(nullptr);
  agent->reset();
  store->reset();
  log::Info("stopped cleanly");
  return 0;
}

}  // namespace

std::function<int()> AddNodeCommand(CLI::App& app) {
  auto flags = std::make_shared<NodeFlags>();
  CLI::App* cmd =
      app.add_subcommand("node", "Run a storage node: keep other drives' encrypted shards.");
  cmd->add_option("--config", flags->config,
                  "Read options from a file (TOML: key = value, keys as the long options; the "
                  "command line wins)");
  cmd->add_option("--data", flags->data, "Data folder (shards, index, node key); required");
  cmd->add_option("--listen", flags->listen, "Address to serve on, HOST:PORT (port 0 picks one)")
      ->capture_default_str();
  cmd->add_option("--capacity", flags->capacity, "Most bytes of shards to keep, e.g. 100G");
  cmd->add_option("--reserve", flags->reserve, "Free disk space always left alone")
      ->capture_default_str();
  cmd->add_option("--max-shard-size", flags->max_shard_size, "Largest shard accepted")
      ->capture_default_str();
  cmd->add_option("--owner-quota", flags->owner_quota,
                  "Most bytes one owner may store (0: no limit)")
      ->capture_default_str();
  cmd->add_option("--scrub-rate", flags->scrub_rate,
                  "Bytes per second read to check stored shards for damage, e.g. 16MiB (0: off)")
      ->capture_default_str();
  cmd->add_option("--allow-owner", flags->allow_owners,
                  "Serve only these owner keys (64 hex digits; repeat the option)");
  cmd->add_option("--join", flags->join,
                  "A member of the network to join through, HOST:PORT (repeat the option)");
  cmd->add_option("--advertise", flags->advertise,
                  "HOST:PORT others reach this node at (default: the --listen address)");
  cmd->add_option("--gossip-period", flags->gossip_period,
                  "Seconds per gossip protocol period (one probe each)")
      ->capture_default_str();
  cmd->add_option("--gossip-ping-timeout", flags->gossip_ping_timeout,
                  "Seconds a ping waits for its ack before indirect pings")
      ->capture_default_str();
  cmd->add_option("--gossip-indirect", flags->gossip_indirect,
                  "Members asked to ping a member that did not answer")
      ->capture_default_str();
  cmd->add_option("--gossip-suspicion-mult", flags->gossip_suspicion_mult,
                  "A suspect is dead after this many times log10(members) periods")
      ->capture_default_str();
  cmd->add_option("--gossip-republish", flags->gossip_republish,
                  "Least seconds between new signed records of this node")
      ->capture_default_str();
  cmd->add_option("--push-pull-interval", flags->push_pull_interval,
                  "Seconds between full syncs of the member list with a random member")
      ->capture_default_str();
  cmd->add_option("--leave-linger", flags->leave_linger,
                  "Seconds the node keeps answering pings after announcing its leave")
      ->capture_default_str();
  cmd->add_option("--threads", flags->threads, "Threads serving requests")->capture_default_str();
  cmd->add_option("--max-connections", flags->max_connections, "Connections open at once")
      ->capture_default_str();
  cmd->add_option("--header-timeout", flags->header_timeout, "Seconds for a request head to arrive")
      ->capture_default_str();
  cmd->add_option("--idle-timeout", flags->idle_timeout, "Seconds a keep-alive connection may idle")
      ->capture_default_str();
  cmd->add_option("--io-timeout", flags->io_timeout, "Seconds a body read or write may stall")
      ->capture_default_str();
  cmd->add_option("--drain-timeout", flags->drain_timeout,
                  "Seconds requests in progress get to finish on SIGTERM/SIGINT")
      ->capture_default_str();
  cmd->add_option("--clock-skew", flags->clock_skew,
                  "Seconds a signed request's time may differ from this node's clock")
      ->capture_default_str();
  cmd->add_option("--log-level", flags->log_level, "debug, info, warn or error")
      ->capture_default_str();
  cmd->add_option("--ready-file", flags->ready_file,
                  "Write HOST:PORT here once serving (for scripts using port 0)");
  cmd->add_flag("--print-id", flags->print_id,
                "Print the node id (creating the key if needed) and exit");
  // Test only (docs/development.md): a node that lies, for the read path's tests. Hidden.
  cmd->add_flag("--test-flip-served-bytes", flags->test_flip_served_bytes,
                "Test only: flip a byte of every shard range served")
      ->group("");
  cmd->add_option("--test-gossip-delay-ms", flags->test_gossip_delay_ms,
                  "Test only: send every gossip packet this much later")
      ->group("");
  return [flags, cmd] {
    if (!flags->config.empty()) {
      std::string err = ApplyConfig(cmd, flags->config);
      if (!err.empty()) return Usage(err);
    }
    return RunNode(*flags);
  };
}

}  // namespace shardfs::cli
