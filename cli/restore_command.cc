#include "cli/restore_command.h"

#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <unistd.h>

#include "backend/catalog.h"
#include "backend/checkpoint.h"
#include "backend/drive_config.h"
#include "base/file.h"
#include "cli/drive_home.h"
#include "cli/drive_open.h"
#include "cli/exit.h"
#include "crypto/key_file.h"
#include "crypto/keys.h"
#include "crypto/sign.h"
#include "net/address.h"
#include "net/http_peer.h"

namespace shardfs::cli {

namespace {

constexpr size_t kMaxPhraseFile = 4096;

struct RestoreFlags {
  std::string home;
  std::string drive = "default";
  std::vector<std::string> nodes;
  std::string phrase;
  std::string phrase_file;
  std::string passphrase_file;
  bool json = false;
};

int Fail(const std::string& what, const Status& s) { return Failure("restore", what, s); }
int Usage(const std::string& msg) { return UsageError("restore", msg); }

int Run(const RestoreFlags& f) {
  if (f.phrase.empty() == f.phrase_file.empty()) {
    return Usage("give the recovery phrase with --recovery-phrase or --recovery-phrase-file");
  }
  std::string phrase = f.phrase;
  if (!f.phrase_file.empty()) {
    auto raw = ReadFile(f.phrase_file, kMaxPhraseFile);
    if (!raw.ok()) return Fail("--recovery-phrase-file " + f.phrase_file, raw.status());
    phrase.assign(raw->begin(), raw->end());
  }
  auto master = crypto::FromRecoveryPhrase(phrase);
  if (!master.ok()) return Usage("recovery phrase: " + master.status().message());
  std::vector<backend::DriveNode> seeds;
  for (const std::string& n : f.nodes) {
    auto hp = net::ParseHostPort(n);
    if (!hp.ok()) return Usage("--node " + n + ": " + hp.status().message());
    seeds.push_back(backend::DriveNode{hp->ToString(), NodeId()});
  }
  std::optional<std::string> passphrase;
  if (!f.passphrase_file.empty()) {
    auto p = ReadPassphraseFile(f.passphrase_file);
    if (!p.ok()) return Fail("--passphrase-file " + f.passphrase_file, p.status());
    passphrase = *p;
  }
  auto home = ResolveDriveHome(f.home, f.drive);
  if (!home.ok()) return Usage(home.status().message());
  for (const std::string& existing :
       {home->config_file(), home->key_file(), home->catalog_file()}) {
    if (std::filesystem::exists(existing)) {
      std::fprintf(stderr, "shardfs restore: a drive already exists here (%s); nothing changed\n",
                   existing.c_str());
      return 1;
    }
  }
  if (Status s = MakeDriveHome(*home); !s.ok()) return Fail("drive folders", s);

  auto owner = std::make_shared<const crypto::SigningKey>(crypto::SigningKey::ForOwner(*master));
  net::HttpPeerOptions po;
  po.connect_timeout = std::chrono::milliseconds(3000);
  po.io_timeout = std::chrono::milliseconds(30000);
  po.retries = 1;
  backend::RestoreOptions ro;
  ro.master = *master;
  ro.seeds = seeds;
  ro.catalog_path = home->catalog_file();
  ro.connect = [&](const backend::DriveNode& n) -> Result<std::shared_ptr<backend::Peer>> {
    SFS_ASSIGN_OR_RETURN(net::HostPort address, net::ParseHostPort(n.address));
    std::optional<NodeId> id;
    if (!n.id.IsZero()) id = n.id;
    SFS_ASSIGN_OR_RETURN(auto peer, net::HttpPeer::Connect(address, owner, po, id));
    return std::shared_ptr<backend::Peer>(std::move(peer));
  };

  // Catalog, then key, then config (a home with a config is a whole drive); a failure removes
  // what this run made.
  std::vector<std::string> made = {ro.catalog_path, ro.catalog_path + "-wal",
                                   ro.catalog_path + "-shm", ro.catalog_path + ".lock"};
  auto undo = [&](const std::string& what, const Status& s) {
    for (auto it = made.rbegin(); it != made.rend(); ++it) ::unlink(it->c_str());
    return Fail(what, s);
  };
  auto restored = backend::RestoreCatalog(ro);
  if (!restored.ok()) {
    return undo(restored.status().code() == Code::kNotFound ? "no drive found"
                                                            : "no checkpoint could be restored",
                restored.status());
  }
  if (Status s = crypto::WriteKeyFile(home->key_file(), *master, passphrase); !s.ok()) {
    return undo("key file", s);
  }
  made.push_back(home->key_file());
  std::string text = backend::EncodeDriveConfig(restored->config);
  if (Status s = WriteFileAtomic(home->config_file(), AsBytes(text), 0600); !s.ok()) {
    return undo("config", s);
  }

  backend::Catalog::Totals totals;
  {
    backend::CatalogOptions co;
    co.path = home->catalog_file();
    co.holder = "shardfs restore";
    auto catalog = backend::Catalog::Open(co);
    if (!catalog.ok()) return Fail("open the restored catalog", catalog.status());
    auto t = (*catalog)->GetTotals();
    if (!t.ok()) return Fail("read the restored catalog", t.status());
    totals = *t;
  }
  const backend::DriveConfig& config = restored->config;
  if (f.json) {
    nlohmann::json j;
    j["drive"] = config.name;
    j["config"] = home->config_file();
    j["key_file"] = home->key_file();
    j["catalog"] = home->catalog_file();
    j["head_sequence"] = restored->head_sequence;
    j["last_change"] = restored->last_change;
    j["heads_found"] = restored->heads_found;
    j["skipped"] = restored->skipped;
    j["files"] = totals.files;
    j["folders"] = totals.folders;
    j["file_bytes"] = totals.file_bytes;
    j["k"] = config.k;
    j["m"] = config.m;
    j["nodes"] = nlohmann::json::array();
    for (const auto& n : config.nodes) {
      j["nodes"].push_back({{"address", n.address}, {"id", n.id.ToHex()}});
    }
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    for (const std::string& s : restored->skipped) {
      std::fprintf(stderr, "shardfs restore: passed over: %s\n", s.c_str());
    }
    std::printf(
        "Drive \"%s\" restored from checkpoint %llu (up to change %llu): %llu files, %llu "
        "folders, %llu bytes; RS(%d,%d) over %zu nodes; config in %s.\n",
        config.name.c_str(), static_cast<unsigned long long>(restored->head_sequence),
        static_cast<unsigned long long>(restored->last_change),
        static_cast<unsigned long long>(totals.files),
        static_cast<unsigned long long>(totals.folders),
        static_cast<unsigned long long>(totals.file_bytes), config.k, config.m, config.nodes.size(),
        home->config_dir.c_str());
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace

std::function<int()> AddRestoreCommand(CLI::App& app) {
  auto flags = std::make_shared<RestoreFlags>();
  CLI::App* cmd = app.add_subcommand(
      "restore", "Rebuild a drive on this machine from its recovery phrase and one of its nodes.");
  cmd->add_option("--node", flags->nodes,
                  "A storage node of the drive, HOST:PORT (repeat, or comma-separated); the "
                  "others are found from the drive's head")
      ->required()
      ->delimiter(',');
  cmd->add_option("--recovery-phrase", flags->phrase, "The recovery phrase `shardfs init` printed");
  cmd->add_option("--recovery-phrase-file", flags->phrase_file,
                  "Read the recovery phrase from this file instead");
  cmd->add_option("--home", flags->home,
                  "Keep the drive's files in this folder (default: the XDG folders of --drive)");
  cmd->add_option("--drive", flags->drive, "The name of the drive's XDG folders")
      ->capture_default_str();
  cmd->add_option("--passphrase-file", flags->passphrase_file,
                  "Protect the new key file with the passphrase on this file's first line");
  cmd->add_flag("--json", flags->json, "Print the result as JSON");
  return [flags] { return Run(*flags); };
}

}  // namespace shardfs::cli
