#include "cli/init_command.h"

#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <unistd.h>

#include "backend/catalog.h"
#include "backend/drive_config.h"
#include "base/file.h"
#include "cli/drive_home.h"
#include "cli/drive_open.h"
#include "cli/exit.h"
#include "cli/local_network.h"
#include "crypto/key_file.h"
#include "crypto/keys.h"
#include "crypto/sign.h"
#include "net/address.h"
#include "net/http_peer.h"

namespace shardfs::cli {

namespace {

struct InitFlags {
  std::string home;
  std::string drive = "default";
  std::vector<std::string> nodes;
  int local_network = 0;
  std::string local_capacity = "10G";
  int k = 4;
  int m = 2;
  std::string passphrase_file;
  bool json = false;
};

int Fail(const std::string& what, const Status& s) { return Failure("init", what, s); }
int Usage(const std::string& msg) { return UsageError("init", msg); }

// Creates the drive over f.nodes.
int InitDrive(const InitFlags& f) {
  backend::DriveConfig config;
  config.name = f.drive;
  config.k = f.k;
  config.m = f.m;
  std::vector<net::HostPort> addresses;
  for (const std::string& n : f.nodes) {
    auto hp = net::ParseHostPort(n);
    if (!hp.ok()) return Usage("--node " + n + ": " + hp.status().message());
    addresses.push_back(*hp);
    config.nodes.push_back(backend::DriveNode{hp->ToString(), NodeId()});
  }
  if (Status v = backend::ValidateDriveConfig(config); !v.ok()) return Usage(v.message());
  const size_t width = static_cast<size_t>(f.k + f.m);
  if (config.nodes.size() < width) {
    return Usage("RS(" + std::to_string(f.k) + "," + std::to_string(f.m) + ") puts each pack on " +
                 std::to_string(width) + " distinct nodes; give at least that many --node (got " +
                 std::to_string(config.nodes.size()) + "), or a smaller --k/--m");
  }
  std::optional<std::string> passphrase;
  if (!f.passphrase_file.empty()) {
    auto p = ReadPassphraseFile(f.passphrase_file);
    if (!p.ok()) return Fail("--passphrase-file " + f.passphrase_file, p.status());
    passphrase = *p;
  }
  auto home = ResolveDriveHome(f.home, f.drive);
  if (!home.ok()) return Usage(home.status().message());
  for (const std::string& existing : {home->config_file(), home->key_file()}) {
    if (std::filesystem::exists(existing)) {
      std::fprintf(stderr, "shardfs init: a drive already exists here (%s); nothing changed\n",
                   existing.c_str());
      return 1;
    }
  }

  // Every node must answer before anything is written.
  crypto::MasterKey master = crypto::MasterKey::Generate();
  auto owner = std::make_shared<const crypto::SigningKey>(crypto::SigningKey::ForOwner(master));
  net::HttpPeerOptions po;
  po.connect_timeout = std::chrono::milliseconds(3000);
  po.io_timeout = std::chrono::milliseconds(10000);
  po.retries = 1;
  for (size_t i = 0; i < addresses.size(); ++i) {
    auto peer = net::HttpPeer::Connect(addresses[i], owner, po);
    if (!peer.ok()) return Fail("node " + addresses[i].ToString(), peer.status());
    config.nodes[i].id = (*peer)->node_id();
  }

  // Key, then catalog, then config: a home with a config is a whole drive. A failure removes
  // what this run made.
  std::vector<std::string> made;
  auto undo = [&](const std::string& what, const Status& s) {
    for (auto it = made.rbegin(); it != made.rend(); ++it) ::unlink(it->c_str());
    return Fail(what, s);
  };
  if (Status s = MakeDriveHome(*home); !s.ok()) return Fail("drive folders", s);
  crypto::PassphraseParams params;
  if (Status s = crypto::WriteKeyFile(home->key_file(), master, passphrase, params); !s.ok()) {
    return undo("key file", s);
  }
  made.push_back(home->key_file());
  {
    backend::CatalogOptions co;
    co.path = home->catalog_file();
    co.holder = "shardfs init";
    made.push_back(co.path);
    made.push_back(co.path + "-wal");
    made.push_back(co.path + "-shm");
    made.push_back(co.path + ".lock");
    auto catalog = backend::Catalog::Open(co);
    if (!catalog.ok()) return undo("catalog", catalog.status());
  }
  std::string text = backend::EncodeDriveConfig(config);
  if (Status s = WriteFileAtomic(home->config_file(), AsBytes(text), 0600); !s.ok()) {
    return undo("config", s);
  }

  std::string phrase = crypto::ToRecoveryPhrase(master);
  if (f.json) {
    nlohmann::json j;
    j["drive"] = config.name;
    j["config"] = home->config_file();
    j["key_file"] = home->key_file();
    j["catalog"] = home->catalog_file();
    j["k"] = config.k;
    j["m"] = config.m;
    j["passphrase_protected"] = passphrase.has_value();
    j["owner"] = owner->public_key().ToHex();
    j["nodes"] = nlohmann::json::array();
    for (const auto& n : config.nodes) {
      j["nodes"].push_back({{"address", n.address}, {"id", n.id.ToHex()}});
    }
    j["recovery_phrase"] = phrase;
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf(
        "Drive \"%s\" created: RS(%d,%d) over %zu nodes; config in %s.\n\n"
        "Recovery phrase. Write it down and keep it safe: with it alone the drive can be\n"
        "restored on any machine, and anyone who has it can read the drive. It is not shown\n"
        "again.\n\n    %s\n\n",
        config.name.c_str(), config.k, config.m, config.nodes.size(), home->config_dir.c_str(),
        phrase.c_str());
  }
  std::fflush(stdout);
  return 0;
}

int Run(InitFlags f) {
  if (f.nodes.empty() == (f.local_network == 0)) {
    return Usage("give the drive's nodes (--node HOST:PORT,...) or --local-network N, one of them");
  }
  if (f.local_network != 0 && f.local_network < f.k + f.m) {
    return Usage("RS(" + std::to_string(f.k) + "," + std::to_string(f.m) + ") needs at least " +
                 std::to_string(f.k + f.m) + " nodes: --local-network " +
                 std::to_string(f.k + f.m) + " or more");
  }
  if (f.local_network == 0) return InitDrive(f);
  auto home = ResolveDriveHome(f.home, f.drive);
  if (!home.ok()) return Usage(home.status().message());
  if (std::filesystem::exists(home->config_file())) {
    std::fprintf(stderr, "shardfs init: a drive already exists here (%s); nothing changed\n",
                 home->config_file().c_str());
    return 1;
  }
  if (Status s = MakeDriveHome(*home); !s.ok()) return Fail("drive folders", s);
  auto local = CreateLocalNetwork(*home, f.local_network, f.local_capacity);
  int rc = kExitFailure;
  if (!local.ok()) {
    Fail("the local network", local.status());
  } else {
    for (const LocalNode& n : *local) f.nodes.push_back(n.address);
    rc = InitDrive(f);
  }
  if (rc != 0) {
    // Nothing of the failed init stays: its nodes stop, their folder goes.
    if (local.ok()) (void)StopLocalNetwork(*local);
    std::error_code ec;
    std::filesystem::remove_all(LocalNetworkDir(*home), ec);
  }
  return rc;
}

}  // namespace

std::function<int()> AddInitCommand(CLI::App& app) {
  auto flags = std::make_shared<InitFlags>();
  CLI::App* cmd = app.add_subcommand("init", "Create a drive: its key, config and empty catalog.");
  cmd->add_option("--home", flags->home,
                  "Keep the drive's files in this folder (default: the XDG folders)");
  cmd->add_option("--drive", flags->drive, "The drive's name")->capture_default_str();
  auto* node = cmd->add_option("--node", flags->nodes,
                               "A storage node, HOST:PORT (repeat, or comma-separated)")
                   ->delimiter(',');
  cmd->add_option("--local-network", flags->local_network,
                  "Instead of --node: start this many storage nodes on this machine, kept in the "
                  "drive's data folder and started again by every command that needs them")
      ->check(CLI::Range(1, 64))
      ->excludes(node);
  cmd->add_option("--local-capacity", flags->local_capacity,
                  "With --local-network: the most each local node keeps")
      ->capture_default_str();
  cmd->add_option("--k", flags->k, "Data shards per pack")->capture_default_str();
  cmd->add_option("--m", flags->m, "Parity shards per pack: any m nodes of a pack may be lost")
      ->capture_default_str();
  cmd->add_option("--passphrase-file", flags->passphrase_file,
                  "Protect the key file with the passphrase on this file's first line");
  cmd->add_flag("--json", flags->json, "Print the result as JSON (with the recovery phrase)");
  return [flags] { return Run(*flags); };
}

}  // namespace shardfs::cli
