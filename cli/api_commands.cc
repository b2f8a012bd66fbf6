#include "cli/api_commands.h"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>
#include <pthread.h>
#include <qrencode.h>
#include <unistd.h>

#include "base/logging.h"
#include "cli/api_server.h"
#include "cli/drive_home.h"
#include "cli/drive_open.h"
#include "cli/drive_tree.h"
#include "cli/exit.h"
#include "cli/mount_control.h"
#include "net/api/api_http.h"
#include "net/api/api_path.h"
#include "net/local_client.h"

namespace shardfs::cli {

namespace {

using nlohmann::json;

struct ServeFlags {
  DriveFlags drive;
  ApiFlags api;
  double flush_timeout = 600;
  std::string log_level = "info";
};

struct PairFlags {
  DriveFlags drive;
  std::string name;
  bool read_only = false;
  std::string root = "/";
  bool json = false;
};

struct DevicesFlags {
  DriveFlags drive;
  bool json = false;
  uint64_t revoke = 0;
};

constexpr auto kLocalTimeout = std::chrono::seconds(30);

int RunServe(const ServeFlags& f) {
  // Signals are taken by this thread (sigwait below), never by the threads serving requests:
  // blocked before any thread (the log's included) starts.
  sigset_t signals;
  sigemptyset(&signals);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&signals, sig);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  auto level = log::ParseLevel(f.log_level);
  if (!level.ok()) return UsageError("serve", level.status().message());
  if (!(f.flush_timeout >= 0 && f.flush_timeout <= 7 * 86400)) {
    return UsageError("serve", "--flush-timeout must be in [0, 604800] seconds");
  }
  if (f.api.http && f.api.listen.empty()) {
    return UsageError("serve", "--http needs --listen HOST:PORT");
  }
  if (Status s = log::Init(log::Options{*level, ""}); !s.ok()) {
    return Failure("serve", "start logging", s);
  }
  auto home = ResolveDriveHome(f.drive.home, f.drive.drive);
  if (!home.ok()) return Failure("serve", "find the drive", home.status());
  auto drive = OpenDrive(f.drive, "shardfs serve (pid " + std::to_string(::getpid()) + ")",
                         /*care=*/true);
  if (!drive.ok()) return Failure("serve", "open the drive", drive.status());
  const auto flush_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(f.flush_timeout * 1000));
  api::ApiOptions options;
  options.drive_name = f.drive.drive;
  options.sync_timeout = flush_timeout;
  auto servers = ApiServers::Start(drive->get(), *home, f.api, options);
  if (!servers.ok()) return Failure("serve", "start the API", servers.status());
  std::printf("Serving drive %s", f.drive.drive.c_str());
  if (!(*servers)->url().empty()) std::printf(" at %s", (*servers)->url().c_str());
  std::printf(" and on %s (pid %d).\n", ApiSocketPath(*home).c_str(), ::getpid());
  if (!(*servers)->fingerprint().empty()) {
    std::printf("Certificate SHA-256 fingerprint%s: %s\n",
                (*servers)->new_certificate() ? " (new)" : "", (*servers)->fingerprint().c_str());
  }
  std::printf("Pair a phone with `shardfs pair --drive %s`. Ctrl-C stops.\n",
              f.drive.drive.c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&signals, &sig);
  log::Info("signal {}: stopping the API and storing what is queued", sig);
  (*servers)->Stop();
  const MountOutcome o = StoreOrQueue(**drive, flush_timeout, home->staging_dir());
  drive->reset();
  if (o.stored) {
    std::printf("Stopped: every write is stored on the nodes.\n");
    return 0;
  }
  std::printf(
      "Stopped: %zu file(s) (%llu bytes) could not be stored now and wait in %s for the next "
      "start. Reason: %s\n",
      o.queued_files, static_cast<unsigned long long>(o.queued_bytes), o.staging_dir.c_str(),
      o.error.c_str());
  return kExitFailure;
}

// The JSON answer of the drive's process to a request on its socket.
Result<json> AskDaemon(const DriveHome& home, const std::string& method, const std::string& target,
                       const json& body = nullptr) {
  return DaemonClient(ApiSocketPath(home)).Call(method, target, body, kLocalTimeout);
}

// A QR code of `text`, in the terminal: two rows of modules per line (half blocks), dark on
// light, with a quiet zone.
std::string TerminalQr(const std::string& text) {
  QRcode* qr = QRcode_encodeString(text.c_str(), 0, QR_ECLEVEL_L, QR_MODE_8, 1);
  if (qr == nullptr) return "";
  const int quiet = 2;
  const int w = qr->width;
  auto dark = [&](int x, int y) {
    if (x < 0 || y < 0 || x >= w || y >= w) return false;
    return (qr->data[y * w + x] & 1) != 0;
  };
  std::string out;
  for (int y = -quiet; y < w + quiet; y += 2) {
    for (int x = -quiet; x < w + quiet; ++x) {
      bool top = dark(x, y), bottom = dark(x, y + 1);
      // Light modules are drawn, dark ones left blank: reads on a dark terminal.
      if (!top && !bottom) {
        out += "\u2588";
      } else if (!top) {
        out += "\u2580";
      } else if (!bottom) {
        out += "\u2584";
      } else {
        out += " ";
      }
    }
    out += "\n";
  }
  QRcode_free(qr);
  return out;
}

int RunPair(const PairFlags& f) {
  auto root = api::SplitPath(f.root);
  if (!root.ok()) return UsageError("pair", "--root: " + root.status().message());
  auto home = ResolveDriveHome(f.drive.home, f.drive.drive);
  if (!home.ok()) return Failure("pair", "find the drive", home.status());
  if (!net::LocalServerRuns(ApiSocketPath(*home))) {
    return Failure("pair", "reach the drive's API",
                   Status::Unavailable("no shardfs process serves drive " + f.drive.drive +
                                       "; start `shardfs serve --listen HOST:PORT` or mount it "
                                       "with `shardfs mount DIR --api HOST:PORT`"));
  }
  json ask = {{"name", f.name}, {"read_only", f.read_only}, {"root", api::JoinPath(*root)}};
  auto code = AskDaemon(*home, "POST", "/api/v1/pair-codes", ask);
  if (!code.ok()) return Failure("pair", "make a pairing code", code.status());
  const std::string url = code->value("url", "");
  if (url.empty()) {
    return Failure("pair", "make a pairing code",
                   Status::Unavailable("the drive's process serves its local socket only; "
                                       "restart it with --api HOST:PORT (mount) or --listen "
                                       "HOST:PORT (serve) so that a phone can reach it"));
  }
  if (f.json) {
    std::printf("%s\n", code->dump(2).c_str());
    return 0;
  }
  const std::string fingerprint = code->value("fingerprint", "");
  std::string link =
      "shardfs://pair?url=" + api::PercentEncode(url) + "&code=" + code->value("code", "");
  if (!fingerprint.empty()) link += "&fingerprint=" + api::PercentEncode(fingerprint);
  std::printf("%s", TerminalQr(link).c_str());
  std::printf("Pairing code: %s (valid until %s, once)\n", code->value("code", "").c_str(),
              code->value("expires", "").c_str());
  std::printf("Server: %s\n", url.c_str());
  if (!fingerprint.empty()) std::printf("Certificate SHA-256: %s\n", fingerprint.c_str());
  std::printf("Scope: %s%s\n", code->value("root", "/").c_str(),
              code->value("read_only", false) ? ", read-only" : "");
  std::printf("The device sends POST %s/api/v1/pair {\"code\": \"...\", \"name\": \"...\"}.\n",
              url.c_str());
  return 0;
}

void PrintDevices(const json& devices, bool as_json) {
  if (as_json) {
    std::printf("%s\n", json{{"devices", devices}}.dump(2).c_str());
    return;
  }
  if (devices.empty()) {
    std::printf("No devices paired.\n");
    return;
  }
  std::printf("%-4s %-20s %-10s %-16s %-26s %s\n", "ID", "NAME", "ACCESS", "ROOT", "LAST USED",
              "STATE");
  for (const auto& d : devices) {
    std::string last = d["last_used"].is_null() ? "never" : d["last_used"].get<std::string>();
    std::printf("%-4llu %-20s %-10s %-16s %-26s %s\n",
                static_cast<unsigned long long>(d["id"].get<uint64_t>()),
                d["name"].get<std::string>().c_str(),
                d["read_only"].get<bool>() ? "read-only" : "read-write",
                d["root"].get<std::string>().c_str(), last.c_str(),
                d["revoked"].get<bool>() ? "revoked" : "active");
  }
}

int RunDevices(const DevicesFlags& f) {
  auto home = ResolveDriveHome(f.drive.home, f.drive.drive);
  if (!home.ok()) return Failure("devices", "find the drive", home.status());
  if (net::LocalServerRuns(ApiSocketPath(*home))) {
    if (f.revoke != 0) {
      auto r = AskDaemon(*home, "DELETE", "/api/v1/devices/" + std::to_string(f.revoke));
      if (!r.ok()) return Failure("devices", "revoke", r.status());
      std::printf("Revoked device %llu (%s): its token no longer works.\n",
                  static_cast<unsigned long long>(f.revoke), r->value("name", "").c_str());
      return 0;
    }
    auto r = AskDaemon(*home, "GET", "/api/v1/devices");
    if (!r.ok()) return Failure("devices", "list", r.status());
    PrintDevices((*r)["devices"], f.json);
    return 0;
  }
  auto drive = OpenDrive(f.drive, "shardfs devices");
  if (!drive.ok()) return Failure("devices", "open the drive", drive.status());
  backend::Catalog& catalog = (*drive)->catalog();
  if (f.revoke != 0) {
    auto r = catalog.RevokeDevice(f.revoke);
    if (!r.ok()) return Failure("devices", "revoke", r.status());
    std::printf("Revoked device %llu (%s): its token no longer works.\n",
                static_cast<unsigned long long>(f.revoke), r->name.c_str());
    return 0;
  }
  auto list = catalog.ListDevices();
  if (!list.ok()) return Failure("devices", "list", list.status());
  json all = json::array();
  for (const auto& dev : *list) all.push_back(api::DeviceJson(dev));
  PrintDevices(all, f.json);
  return 0;
}

}  // namespace

std::map<std::string, std::function<int()>> AddApiCommands(CLI::App& app) {
  std::map<std::string, std::function<int()>> run;

  auto serve = std::make_shared<ServeFlags>();
  CLI::App* s = app.add_subcommand(
      "serve", "Serve the drive's companion API (phones, WebDAV, dashboard) without a mount.");
  AddDriveFlags(s, &serve->drive);
  s->add_option("--listen", serve->api.listen,
                "HOST:PORT to serve HTTPS on (0.0.0.0:8443 for the whole network); without it, "
                "only the local socket");
  AddApiHttpFlag(s, &serve->api);
  s->add_option("--flush-timeout", serve->flush_timeout,
                "Seconds a sync (and the stop) waits to store what is queued; at the stop, "
                "what is left stays queued on local disk")
      ->capture_default_str();
  s->add_option("--log-level", serve->log_level, "debug, info, warn or error")
      ->capture_default_str();
  run["serve"] = [serve] { return RunServe(*serve); };

  auto pair = std::make_shared<PairFlags>();
  CLI::App* p = app.add_subcommand(
      "pair", "Print a one-time code (and QR code) with which a phone gets its own token.");
  AddDriveFlags(p, &pair->drive);
  p->add_option("--name", pair->name, "The device's name");
  p->add_flag("--read-only", pair->read_only, "The device may only read");
  p->add_option("--root", pair->root, "The folder the device is confined to")
      ->capture_default_str();
  p->add_flag("--json", pair->json, "Print the code, URL and fingerprint as JSON");
  run["pair"] = [pair] { return RunPair(*pair); };

  auto devices = std::make_shared<DevicesFlags>();
  CLI::App* d = app.add_subcommand("devices", "List the paired devices, or revoke one.");
  AddDriveFlags(d, &devices->drive);
  d->add_flag("--json", devices->json, "Print them as JSON");
  CLI::App* revoke = d->add_subcommand("revoke", "End a device's access at once.");
  revoke->add_option("id", devices->revoke, "The device's ID (from `shardfs devices`)")
      ->required()
      ->check(CLI::PositiveNumber);
  revoke->fallthrough();
  run["devices"] = [devices] { return RunDevices(*devices); };
  return run;
}

}  // namespace shardfs::cli
