// The companion API's REST handlers over a drive on in-memory nodes, called as the server
// calls them (no sockets): listing, stat, download with Range and ETag, conditional upload,
// mkdir, delete, move, changes with long polls, devices, and the requests that must fail
// (bad tokens, paths out of scope, read-only devices, too large uploads).

#include "net/api/api_service.h"

#include <array>
#include <fstream>
#include <future>
#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/memory_drive.h"
#include "tests/testutil.h"

namespace shardfs::api {
namespace {

using backend::Drive;
using backend::DriveOptions;
using nlohmann::json;
using namespace std::chrono_literals;

struct Reply {
  unsigned status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  std::string Header(const std::string& name) const {
    for (const auto& [k, v] : headers) {
      if (k == name) return v;
    }
    return "";
  }
  json Json() const { return json::parse(body, nullptr, false); }
};

using Headers = std::vector<std::pair<std::string, std::string>>;

std::string B64(const std::string& in) {
  static const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kB64[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(kB64[(acc << (6 - bits)) & 63]);
  while (out.size() % 4) out.push_back('=');
  return out;
}

class ApiServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DriveOptions o = test::MemoryDriveOptions(dir_.path(), 6, uint64_t{64} << 20);
    ASSERT_OK_AND_ASSIGN(drive_, Drive::Open(std::move(o)));
    ApiOptions a;
    a.drive_name = "test";
    a.url = "https://127.0.0.1:8443";
    a.fingerprint = "AB:CD";
    a.invalidate_entry = [this](backend::Ino parent, const std::string& name) {
      std::lock_guard<std::mutex> lock(mu_);
      invalidated_.emplace_back(parent, name);
    };
    api_ = std::make_unique<ApiService>(drive_.get(), a);
  }
  void TearDown() override {
    api_.reset();
    drive_.reset();
  }

  // A request as the server makes it; the body in pieces of 7 KiB.
  Reply Call(const std::string& method, const std::string& target, const std::string& token,
             const std::string& body = "", Headers headers = {}) {
    net::HttpRequestHead h;
    h.method = method;
    h.target = target;
    h.headers = std::move(headers);
    if (token == "local") {
      h.local = true;
    } else if (!token.empty()) {
      h.headers.emplace_back("Authorization", "Bearer " + token);
    }
    if (!body.empty() || method == "PUT" || method == "POST" || method == "PATCH") {
      h.content_length = body.size();
    }
    net::Dispatch d = api_->Begin(h);
    net::HttpResponse r;
    if (d.later) {
      auto p = std::make_shared<std::promise<net::HttpResponse>>();
      auto f = p->get_future();
      d.later([p](net::HttpResponse x) { p->set_value(std::move(x)); });
      EXPECT_EQ(f.wait_for(70s), std::future_status::ready);
      r = f.get();
    } else if (d.sink) {
      EXPECT_LE(body.size(), d.body_limit);
      Status s;
      for (size_t i = 0; i < body.size() && s.ok(); i += 7000) {
        s = d.sink->Write(AsBytes(std::string_view(body).substr(i, 7000)));
      }
      r = s.ok() ? d.sink->Finish() : d.sink->Fail(s);
    } else {
      r = std::move(*d.response);
    }
    Reply out;
    out.status = r.status;
    out.headers = r.headers;
    if (r.stream && !r.head_only) {
      std::string buf(100000, '\0');
      while (true) {
        auto n =
            r.stream->Read(MutableByteSpan(reinterpret_cast<uint8_t*>(buf.data()), buf.size()));
        EXPECT_OK(n.status());
        if (!n.ok() || *n == 0) break;
        out.body.append(buf.data(), *n);
      }
    } else {
      out.body = r.body;
    }
    return out;
  }

  // A device's token, by pairing (as the owner on the local socket, then the device).
  std::string PairDevice(const std::string& root, bool read_only) {
    Reply code = Call("POST", "/api/v1/pair-codes", "local",
                      json{{"name", "phone"}, {"root", root}, {"read_only", read_only}}.dump());
    EXPECT_EQ(code.status, 201u) << code.body;
    Reply paired = Call("POST", "/api/v1/pair", "",
                        json{{"code", code.Json()["code"]}, {"name", "my phone"}}.dump());
    EXPECT_EQ(paired.status, 200u) << paired.body;
    return paired.Json()["token"].get<std::string>();
  }

  std::string Put(const std::string& path, const std::string& data, const std::string& token,
                  unsigned expect = 201, Headers headers = {}) {
    Reply r = Call("PUT", "/api/v1/files" + path, token, data, std::move(headers));
    EXPECT_EQ(r.status, expect) << path << ": " << r.body;
    return r.Header("ETag");
  }

  test::TempDir dir_;
  std::unique_ptr<Drive> drive_;
  std::unique_ptr<ApiService> api_;
  std::mutex mu_;
  std::vector<std::pair<backend::Ino, std::string>> invalidated_;
};

TEST_F(ApiServiceTest, UploadsListsStatsAndDownloads) {
  std::string data(300000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 31 + i / 1000);
  ASSERT_EQ(Call("POST", "/api/v1/folders/Photos", "local").status, 201u);
  std::string etag = Put("/Photos/a%20b.jpg", data, "local");
  EXPECT_FALSE(etag.empty());
  // The kernel's cache of a mount hears of the new entry.
  {
    std::lock_guard<std::mutex> lock(mu_);
    ASSERT_FALSE(invalidated_.empty());
    EXPECT_EQ(invalidated_.back().second, "a b.jpg");
  }

  Reply list = Call("GET", "/api/v1/list/Photos", "local");
  ASSERT_EQ(list.status, 200u) << list.body;
  json l = list.Json();
  ASSERT_EQ(l["entries"].size(), 1u);
  EXPECT_EQ(l["entries"][0]["name"], "a b.jpg");
  EXPECT_EQ(l["entries"][0]["path"], "/Photos/a b.jpg");
  EXPECT_EQ(l["entries"][0]["size"], data.size());
  EXPECT_EQ(l["entries"][0]["etag"], etag);
  EXPECT_TRUE(l["next_cursor"].is_null());

  Reply stat = Call("GET", "/api/v1/stat/Photos", "local");
  EXPECT_EQ(stat.Json()["type"], "folder");

  Reply get = Call("GET", "/api/v1/files/Photos/a%20b.jpg", "local");
  ASSERT_EQ(get.status, 200u);
  EXPECT_EQ(get.body, data);
  EXPECT_EQ(get.Header("ETag"), etag);

  Reply part =
      Call("GET", "/api/v1/files/Photos/a%20b.jpg", "local", "", {{"Range", "bytes=1000-1999"}});
  EXPECT_EQ(part.status, 206u);
  EXPECT_EQ(part.body, data.substr(1000, 1000));
  EXPECT_EQ(part.Header("Content-Range"), "bytes 1000-1999/300000");

  Reply beyond =
      Call("GET", "/api/v1/files/Photos/a%20b.jpg", "local", "", {{"Range", "bytes=300000-"}});
  EXPECT_EQ(beyond.status, 416u);
  EXPECT_EQ(beyond.Header("Content-Range"), "bytes */300000");

  Reply cached =
      Call("GET", "/api/v1/files/Photos/a%20b.jpg", "local", "", {{"If-None-Match", etag}});
  EXPECT_EQ(cached.status, 304u);
  EXPECT_TRUE(cached.body.empty());

  Reply head = Call("HEAD", "/api/v1/files/Photos/a%20b.jpg", "local");
  EXPECT_EQ(head.status, 200u);
  EXPECT_TRUE(head.body.empty());

  EXPECT_EQ(Call("GET", "/api/v1/files/Photos", "local").status, 409u);
  EXPECT_EQ(Call("GET", "/api/v1/files/nothing", "local").status, 404u);
}

TEST_F(ApiServiceTest, ListingsArePaged) {
  for (int i = 0; i < 7; ++i) Put("/f" + std::to_string(i), "x", "local");
  std::vector<std::string> names;
  std::string cursor;
  for (int page = 0; page < 10; ++page) {
    Reply r =
        Call("GET", "/api/v1/list/?limit=3" + (cursor.empty() ? "" : "&cursor=" + cursor), "local");
    ASSERT_EQ(r.status, 200u);
    json j = r.Json();
    for (const auto& e : j["entries"]) names.push_back(e["name"]);
    if (j["next_cursor"].is_null()) break;
    cursor = j["next_cursor"];
  }
  EXPECT_EQ(names, (std::vector<std::string>{"f0", "f1", "f2", "f3", "f4", "f5", "f6"}));
  EXPECT_EQ(Call("GET", "/api/v1/list/?limit=0", "local").status, 400u);
}

TEST_F(ApiServiceTest, ConditionalUploadsNeverOverwriteBlindly) {
  std::string v1 = Put("/doc.txt", "one", "local");
  // If-None-Match: * refuses an existing file.
  Put("/doc.txt", "two", "local", 412, {{"If-None-Match", "*"}});
  // If-Match with another version is refused; with the current one it replaces.
  Put("/doc.txt", "two", "local", 412, {{"If-Match", "\"1-2-3\""}});
  std::string v2 = Put("/doc.txt", "two", "local", 200, {{"If-Match", v1}});
  EXPECT_NE(v1, v2);
  Put("/doc.txt", "three", "local", 412, {{"If-Match", v1}});
  EXPECT_EQ(Call("GET", "/api/v1/files/doc.txt", "local").body, "two");
  // Into a missing folder: a conflict; over a folder: a conflict.
  Put("/no/such/file", "x", "local", 409);
  ASSERT_EQ(Call("POST", "/api/v1/folders/dir", "local").status, 201u);
  Put("/dir", "x", "local", 409);
}

TEST_F(ApiServiceTest, AnUploadCutShortLeavesNothing) {
  Put("/keep.txt", "old", "local");
  net::HttpRequestHead h;
  h.method = "PUT";
  h.target = "/api/v1/files/keep.txt";
  h.local = true;
  h.content_length = 100000;
  {
    net::Dispatch d = api_->Begin(h);
    ASSERT_TRUE(d.sink);
    ASSERT_OK(d.sink->Write(AsBytes(std::string(50000, 'n'))));
    // The client goes away: the server drops the sink.
  }
  EXPECT_EQ(Call("GET", "/api/v1/files/keep.txt", "local").body, "old");
  ASSERT_OK_AND_ASSIGN(auto orphans, drive_->catalog().Orphans());
  EXPECT_TRUE(orphans.empty());
}

TEST_F(ApiServiceTest, UploadsLargerThanFreeSpaceAreRefused) {
  net::HttpRequestHead h;
  h.method = "PUT";
  h.target = "/api/v1/files/huge.bin";
  h.local = true;
  h.content_length = uint64_t{1} << 40;
  net::Dispatch d = api_->Begin(h);
  ASSERT_TRUE(d.response);
  EXPECT_EQ(d.response->status, 507u);
  EXPECT_EQ(Call("GET", "/api/v1/stat/huge.bin", "local").status, 404u);
}

TEST_F(ApiServiceTest, MkdirDeleteAndMove) {
  EXPECT_EQ(Call("POST", "/api/v1/folders/a/b/c", "local").status, 409u);
  EXPECT_EQ(Call("POST", "/api/v1/folders/a/b/c?parents=1", "local").status, 201u);
  EXPECT_EQ(Call("POST", "/api/v1/folders/a/b/c?parents=1", "local").status, 200u);
  EXPECT_EQ(Call("POST", "/api/v1/folders/a/b/c", "local").status, 409u);
  Put("/a/b/c/f.txt", "data", "local");
  EXPECT_EQ(Call("DELETE", "/api/v1/files/a", "local").status, 409u);  // not empty
  Reply moved = Call("POST", "/api/v1/move", "local",
                     json{{"from", "/a/b/c/f.txt"}, {"to", "/a/g.txt"}}.dump());
  ASSERT_EQ(moved.status, 200u) << moved.body;
  EXPECT_EQ(moved.Json()["path"], "/a/g.txt");
  Put("/h.txt", "other", "local");
  EXPECT_EQ(
      Call("POST", "/api/v1/move", "local", json{{"from", "/h.txt"}, {"to", "/a/g.txt"}}.dump())
          .status,
      412u);
  EXPECT_EQ(Call("POST", "/api/v1/move", "local",
                 json{{"from", "/h.txt"}, {"to", "/a/g.txt"}, {"overwrite", true}}.dump())
                .status,
            200u);
  EXPECT_EQ(Call("GET", "/api/v1/files/a/g.txt", "local").body, "other");
  EXPECT_EQ(Call("POST", "/api/v1/move", "local", "not json").status, 400u);
  EXPECT_EQ(Call("DELETE", "/api/v1/files/a?recursive=1", "local").status, 204u);
  EXPECT_EQ(Call("GET", "/api/v1/stat/a", "local").status, 404u);
  ASSERT_OK_AND_ASSIGN(auto entries, drive_->ReadDir(backend::kRootIno, "", 10));
  EXPECT_TRUE(entries.empty());
}

TEST_F(ApiServiceTest, TokensAreNeededAndChecked) {
  EXPECT_EQ(Call("GET", "/api/v1/health", "").status, 200u);
  Reply none = Call("GET", "/api/v1/list/", "");
  EXPECT_EQ(none.status, 401u);
  EXPECT_FALSE(none.Header("WWW-Authenticate").empty());
  EXPECT_EQ(Call("GET", "/api/v1/list/", "sfs_" + std::string(64, 'a')).status, 401u);
  std::string token = PairDevice("/", false);
  EXPECT_EQ(Call("GET", "/api/v1/list/", token).status, 200u);
  // Basic auth with the token as the password, as WebDAV clients send it.
  std::string basic = "Basic " + B64("any:" + token);
  EXPECT_EQ(Call("GET", "/api/v1/list/", "", "", {{"Authorization", basic}}).status, 200u);
  // The owner lists devices and revokes; the token fails at once.
  Reply devices = Call("GET", "/api/v1/devices", "local");
  ASSERT_EQ(devices.status, 200u);
  ASSERT_EQ(devices.Json()["devices"].size(), 1u);
  uint64_t id = devices.Json()["devices"][0]["id"];
  EXPECT_FALSE(devices.Json()["devices"][0]["last_used"].is_null());
  EXPECT_EQ(Call("DELETE", "/api/v1/devices/" + std::to_string(id), "local").status, 200u);
  EXPECT_EQ(Call("GET", "/api/v1/list/", token).status, 401u);
  EXPECT_EQ(Call("DELETE", "/api/v1/devices/999", "local").status, 404u);
  // A wrong pairing code.
  EXPECT_EQ(Call("POST", "/api/v1/pair", "", json{{"code", "AAAA-AAAA"}}.dump()).status, 403u);
  EXPECT_EQ(Call("POST", "/api/v1/pair", "", "[1,2]").status, 400u);
}

TEST_F(ApiServiceTest, AScopedDeviceCannotLeaveItsFolder) {
  Put("/secret.txt", "secret", "local");
  std::string token = PairDevice("/Camera", false);  // makes /Camera
  Put("/in.jpg", "photo", token);
  EXPECT_EQ(Call("GET", "/api/v1/files/Camera/in.jpg", "local").body, "photo");
  Reply list = Call("GET", "/api/v1/list/", token);
  ASSERT_EQ(list.status, 200u);
  ASSERT_EQ(list.Json()["entries"].size(), 1u);
  EXPECT_EQ(list.Json()["entries"][0]["path"], "/in.jpg");
  for (const char* escape :
       {"/api/v1/files/../secret.txt", "/api/v1/files/%2e%2e/secret.txt",
        "/api/v1/files/%2E%2E%2Fsecret.txt", "/api/v1/files/a%00b", "/api/v1/files/%ff"}) {
    Reply r = Call("GET", escape, token);
    EXPECT_EQ(r.status, 400u) << escape;
  }
  EXPECT_EQ(Call("GET", "/api/v1/files/secret.txt", token).status, 404u);
  // A symlink inside the scope pointing out is not followed.
  ASSERT_OK_AND_ASSIGN(auto camera, drive_->Lookup(backend::kRootIno, "Camera"));
  ASSERT_OK(drive_->Symlink(camera.ino, "out", "..").status());
  EXPECT_EQ(Call("GET", "/api/v1/files/out/secret.txt", token).status, 409u);
  EXPECT_EQ(Call("GET", "/api/v1/list/out", token).status, 409u);
  // Moves cannot leave it either.
  EXPECT_EQ(
      Call("POST", "/api/v1/move", token, json{{"from", "/in.jpg"}, {"to", "/../x"}}.dump()).status,
      400u);
  EXPECT_EQ(Call("DELETE", "/api/v1/files/", token).status, 403u);
  // Owner-only routes.
  EXPECT_EQ(Call("GET", "/api/v1/devices", token).status, 403u);
  EXPECT_EQ(Call("POST", "/api/v1/pair-codes", token, "{}").status, 403u);
}

TEST_F(ApiServiceTest, AReadOnlyDeviceChangesNothing) {
  Put("/a.txt", "a", "local");
  std::string token = PairDevice("/", true);
  EXPECT_EQ(Call("GET", "/api/v1/files/a.txt", token).body, "a");
  EXPECT_EQ(Call("PUT", "/api/v1/files/b.txt", token, "b").status, 403u);
  EXPECT_EQ(Call("DELETE", "/api/v1/files/a.txt", token).status, 403u);
  EXPECT_EQ(Call("POST", "/api/v1/folders/d", token).status, 403u);
  EXPECT_EQ(
      Call("POST", "/api/v1/move", token, json{{"from", "/a.txt"}, {"to", "/c"}}.dump()).status,
      403u);
  EXPECT_EQ(Call("GET", "/api/v1/stat/b.txt", "local").status, 404u);
}

TEST_F(ApiServiceTest, ChangesFollowTheJournalInScope) {
  std::string token = PairDevice("/Camera", false);
  Reply start = Call("GET", "/api/v1/changes", token);
  ASSERT_EQ(start.status, 200u);
  std::string cursor = start.Json()["cursor"];
  Put("/Camera/a.jpg", "1", "local");
  Put("/elsewhere.txt", "x", "local");  // out of scope: not seen
  Put("/Camera/a.jpg", "2", "local", 200);
  ASSERT_EQ(Call("POST", "/api/v1/move", "local",
                 json{{"from", "/Camera/a.jpg"}, {"to", "/Camera/b.jpg"}}.dump())
                .status,
            200u);
  ASSERT_EQ(Call("POST", "/api/v1/move", "local",
                 json{{"from", "/Camera/b.jpg"}, {"to", "/out.jpg"}}.dump())
                .status,
            200u);
  Reply page = Call("GET", "/api/v1/changes?cursor=" + cursor, token);
  ASSERT_EQ(page.status, 200u) << page.body;
  json j = page.Json();
  std::vector<std::string> seen;
  for (const auto& c : j["changes"]) {
    seen.push_back(c["op"].get<std::string>() + " " + c["path"].get<std::string>() +
                   (c.contains("from") ? " from " + c["from"].get<std::string>() : ""));
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"created /a.jpg", "modified /a.jpg",
                                            "moved /b.jpg from /a.jpg", "deleted /b.jpg"}));
  EXPECT_FALSE(j["reset"].get<bool>());
  // Nothing new: an empty page with the same cursor.
  Reply again = Call("GET", "/api/v1/changes?cursor=" + j["cursor"].get<std::string>(), token);
  EXPECT_TRUE(again.Json()["changes"].empty());
  EXPECT_EQ(again.Json()["cursor"], j["cursor"]);
  // A cursor from the future: reset.
  Reply reset = Call("GET", "/api/v1/changes?cursor=999999", token);
  EXPECT_TRUE(reset.Json()["reset"].get<bool>());
  EXPECT_EQ(Call("GET", "/api/v1/changes?cursor=x", token).status, 400u);
}

TEST_F(ApiServiceTest, ALongPollAnswersWhenAChangeComes) {
  std::string token = PairDevice("/Camera", false);
  std::string cursor = Call("GET", "/api/v1/changes", token).Json()["cursor"];
  auto start = std::chrono::steady_clock::now();
  auto waiting = std::async(std::launch::async, [&] {
    return Call("GET", "/api/v1/changes?wait=20&cursor=" + cursor, token);
  });
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(waiting.wait_for(0ms), std::future_status::timeout);
  Put("/other.txt", "not seen", "local");  // out of scope: keeps waiting
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(waiting.wait_for(0ms), std::future_status::timeout);
  Put("/Camera/new.jpg", "seen", "local");
  Reply r = waiting.get();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  ASSERT_EQ(r.status, 200u);
  ASSERT_EQ(r.Json()["changes"].size(), 1u);
  EXPECT_EQ(r.Json()["changes"][0]["path"], "/new.jpg");
  // A poll with nothing to tell ends at its wait, with its cursor (after the upload's commit,
  // which is a change of its own: "modified").
  ASSERT_OK(drive_->Sync(30s));
  std::string now = Call("GET", "/api/v1/changes", token).Json()["cursor"];
  auto t0 = std::chrono::steady_clock::now();
  Reply quiet = Call("GET", "/api/v1/changes?wait=1&cursor=" + now, token);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 900ms);
  EXPECT_TRUE(quiet.Json()["changes"].empty());
}

TEST_F(ApiServiceTest, StatusShowsUsageNodesAndDurability) {
  Put("/a.txt", "abc", "local");
  ASSERT_OK(drive_->Sync(30s));
  Reply r = Call("GET", "/api/v1/status", "local");
  ASSERT_EQ(r.status, 200u) << r.body;
  json j = r.Json();
  EXPECT_EQ(j["drive"], "test");
  EXPECT_EQ(j["usage"]["files"], 1);
  EXPECT_EQ(j["nodes"].size(), 6u);
  EXPECT_EQ(j["durability"]["packs"], j["durability"]["full"]);
  EXPECT_TRUE(j["uploads"].is_array());
}

// Every route of docs/openapi.json is served: its method on it (with made-up path
// parameters) reaches a handler, not the router's "no such route" or 405.
TEST_F(ApiServiceTest, KeepsModesTimesAndSymlinksForTheOwner) {
  // Modes on PUT and mkdir; the entry has every attribute `shardfs stat` shows.
  ASSERT_EQ(Call("POST", "/api/v1/folders/private?mode=700", "local").status, 201u);
  Reply put = Call("PUT", "/api/v1/files/private/key?mode=600", "local", "secret",
                   {{"X-OC-Mtime", "1614834367.123456789"}});
  ASSERT_EQ(put.status, 201u) << put.body;
  json e = put.Json();
  EXPECT_EQ(e["mode"], 0600);
  EXPECT_EQ(e["mtime_ns"], 1614834367123456789);
  EXPECT_EQ(e["links"], 1);
  EXPECT_GT(e["inode"].get<uint64_t>(), 1u);
  for (const char* key : {"uid", "gid", "atime_ns", "ctime_ns"}) EXPECT_TRUE(e.contains(key));
  EXPECT_EQ(Call("GET", "/api/v1/stat/private", "local").Json()["mode"], 0700);
  EXPECT_EQ(Call("PUT", "/api/v1/files/x?mode=999", "local", "x").status, 400u);
  EXPECT_EQ(Call("POST", "/api/v1/folders/y?mode=rwx", "local").status, 400u);
  EXPECT_EQ(Call("GET", "/api/v1/stat/x", "local").status, 404u);

  // PATCH sets the mode and times, and nothing else.
  Reply patched = Call("PATCH", "/api/v1/stat/private", "local",
                       json{{"mode", 0750}, {"mtime_ns", 1000000001}}.dump());
  ASSERT_EQ(patched.status, 200u) << patched.body;
  EXPECT_EQ(patched.Json()["mode"], 0750);
  EXPECT_EQ(patched.Json()["mtime_ns"], 1000000001);
  EXPECT_EQ(Call("PATCH", "/api/v1/stat/private", "local", json{{"mode", 010000}}.dump()).status,
            400u);
  EXPECT_EQ(Call("PATCH", "/api/v1/stat/private", "local", json{{"mtime_ns", -1}}.dump()).status,
            400u);
  EXPECT_EQ(Call("PATCH", "/api/v1/stat/private", "local", json{{"mode", "x"}}.dump()).status,
            400u);
  EXPECT_EQ(Call("PATCH", "/api/v1/stat/missing", "local", json{{"mode", 0644}}.dump()).status,
            404u);
  EXPECT_EQ(Call("GET", "/api/v1/stat/private", "local").Json()["mode"], 0750);

  // Symlinks: the owner makes them; stat shows the target; the API never follows them.
  Reply link =
      Call("POST", "/api/v1/links/private/to-key", "local", json{{"target", "key"}}.dump());
  ASSERT_EQ(link.status, 201u) << link.body;
  EXPECT_EQ(link.Json()["type"], "symlink");
  Reply stat = Call("GET", "/api/v1/stat/private/to-key", "local");
  EXPECT_EQ(stat.Json()["target"], "key");
  EXPECT_EQ(Call("GET", "/api/v1/files/private/to-key", "local").status, 409u);
  EXPECT_EQ(
      Call("POST", "/api/v1/links/private/to-key", "local", json{{"target", "key"}}.dump()).status,
      409u);
  EXPECT_EQ(Call("POST", "/api/v1/links/private/z", "local", json{{"target", ""}}.dump()).status,
            400u);
  EXPECT_EQ(Call("POST", "/api/v1/links/nofolder/z", "local", json{{"target", "a"}}.dump()).status,
            409u);
  // A device confined to a folder makes no symlink (an owner token, read-write over the whole
  // drive, may); a read-only one changes no attribute.
  std::string writer = PairDevice("/private", false);
  EXPECT_EQ(Call("POST", "/api/v1/links/l", writer, json{{"target", "/etc"}}.dump()).status, 403u);
  EXPECT_EQ(Call("GET", "/api/v1/stat/private/l", "local").status, 404u);
  std::string reader = PairDevice("/", true);
  EXPECT_EQ(Call("PATCH", "/api/v1/stat/private", reader, json{{"mode", 0777}}.dump()).status,
            403u);
  EXPECT_EQ(Call("GET", "/api/v1/stat/private", "local").Json()["mode"], 0750);
}

TEST_F(ApiServiceTest, SyncsUploadsWithOrWithoutACheckpoint) {
  Put("/a", "some bytes", "local");
  Reply only = Call("POST", "/api/v1/sync?checkpoint=0", "local");
  ASSERT_EQ(only.status, 200u) << only.body;
  EXPECT_TRUE(only.Json()["head_sequence"].is_null());
  EXPECT_EQ(drive_->Uploads().staged.layers, 0u);
  Reply full = Call("POST", "/api/v1/sync", "local");
  ASSERT_EQ(full.status, 200u) << full.body;
  EXPECT_GT(full.Json()["head_sequence"].get<uint64_t>(), 0u);
  // The caller's own wait for the nodes, within bounds.
  Put("/b", "more bytes", "local");
  EXPECT_EQ(Call("POST", "/api/v1/sync?timeout=3600", "local").status, 200u);
  EXPECT_EQ(drive_->Uploads().staged.layers, 0u);
  for (const char* bad : {"0", "-1", "1.5", "x", "604801", ""}) {
    EXPECT_EQ(Call("POST", std::string("/api/v1/sync?timeout=") + bad, "local").status, 400u)
        << bad;
  }
}

TEST_F(ApiServiceTest, StatusShowsWhatEachNodeAnswered) {
  json s = Call("GET", "/api/v1/status?fresh=1", "local").Json();
  ASSERT_EQ(s["nodes"].size(), 6u);
  for (const json& n : s["nodes"]) {
    EXPECT_EQ(n["up"], true) << n.dump();
    EXPECT_TRUE(n.contains("shards") && n.contains("used") && n.contains("version")) << n.dump();
  }
  EXPECT_EQ(s["space"]["nodes_up"], 6);
}

TEST_F(ApiServiceTest, OpenApiRoutesAreServed) {
  std::ifstream in(std::string(SHARDFS_SOURCE_DIR) + "/docs/openapi.json");
  ASSERT_TRUE(in.good());
  json spec = json::parse(in, nullptr, false);
  ASSERT_TRUE(spec.is_object());
  ASSERT_FALSE(spec["paths"].empty());
  Put("/doc.txt", "x", "local");
  int routes = 0;
  for (const auto& [path, methods] : spec["paths"].items()) {
    std::string target = path;
    for (auto [from, to] :
         std::vector<std::pair<std::string, std::string>>{{"{path}", "doc.txt"}, {"{id}", "1"}}) {
      if (auto at = target.find(from); at != std::string::npos) target.replace(at, from.size(), to);
    }
    for (const auto& [method, op] : methods.items()) {
      std::string m = method;
      for (char& c : m) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      // Not DELETE of the file: later routes use it.
      if (m == "DELETE" && target == "/api/v1/files/doc.txt") target = "/api/v1/files/nothing";
      std::string body = m == "POST" || m == "PUT" ? "{}" : "";
      Reply r = Call(m, target, "local", body);
      EXPECT_NE(r.status, 405u) << m << " " << target;
      if (r.status == 404) {
        EXPECT_NE(r.Json().value("message", ""), "no such API route") << target;
      }
      // Every status the route answers is documented.
      EXPECT_TRUE(op["responses"].contains(std::to_string(r.status)))
          << m << " " << target << " answered " << r.status << ": " << r.body;
      ++routes;
    }
  }
  EXPECT_GE(routes, 17);
  // And what is not documented is not served.
  EXPECT_EQ(Call("GET", "/api/v1/nothing", "local").Json()["message"], "no such API route");
}

// --- tus ---------------------------------------------------------------------------------

const Headers kTus = {{"Tus-Resumable", "1.0.0"}};
Headers TusPatch(uint64_t offset) {
  return {{"Tus-Resumable", "1.0.0"},
          {"Content-Type", "application/offset+octet-stream"},
          {"Upload-Offset", std::to_string(offset)}};
}

TEST_F(ApiServiceTest, TusUploadsResumeWhereTheyStopped) {
  std::string token = PairDevice("/Camera", false);
  Reply options = Call("OPTIONS", "/api/v1/uploads", "");
  EXPECT_EQ(options.status, 204u);
  EXPECT_EQ(options.Header("Tus-Version"), "1.0.0");
  EXPECT_NE(options.Header("Tus-Extension").find("creation"), std::string::npos);
  EXPECT_NE(options.Header("Tus-Extension").find("termination"), std::string::npos);
  // No Tus-Resumable: 412.
  EXPECT_EQ(Call("POST", "/api/v1/uploads", token, "", {{"Upload-Length", "10"}}).status, 412u);

  std::string data(300000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + i / 300);
  Headers create = kTus;
  create.emplace_back("Upload-Length", std::to_string(data.size()));
  create.emplace_back("Upload-Metadata",
                      "path " + B64("2026/11/a.jpg") + ",mtime " + B64("1700000000"));
  Reply made = Call("POST", "/api/v1/uploads", token, "", create);
  ASSERT_EQ(made.status, 201u) << made.body;
  std::string location = made.Header("Location");
  ASSERT_EQ(location.rfind("/api/v1/uploads/", 0), 0u);
  EXPECT_EQ(made.Header("Tus-Resumable"), "1.0.0");
  EXPECT_FALSE(made.Header("Upload-Expires").empty());

  Reply first = Call("PATCH", location, token, data.substr(0, 100000), TusPatch(0));
  ASSERT_EQ(first.status, 204u) << first.body;
  EXPECT_EQ(first.Header("Upload-Offset"), "100000");
  // A PATCH at the wrong offset is refused, and says where the upload is.
  Reply wrong = Call("PATCH", location, token, data.substr(0, 10), TusPatch(5));
  EXPECT_EQ(wrong.status, 409u);
  EXPECT_EQ(wrong.Header("Upload-Offset"), "100000");
  EXPECT_EQ(
      Call("PATCH", location, token, "x", {{"Tus-Resumable", "1.0.0"}, {"Upload-Offset", "100000"}})
          .status,
      415u);
  // A PATCH cut short: what came stays.
  {
    net::HttpRequestHead h;
    h.method = "PATCH";
    h.target = location;
    h.headers = TusPatch(100000);
    h.headers.emplace_back("Authorization", "Bearer " + token);
    h.content_length = 200000;
    net::Dispatch d = api_->Begin(h);
    ASSERT_TRUE(d.sink);
    ASSERT_OK(d.sink->Write(AsBytes(std::string_view(data).substr(100000, 50000))));
  }
  Reply head = Call("HEAD", location, token, "", kTus);
  EXPECT_EQ(head.status, 200u);
  EXPECT_EQ(head.Header("Upload-Offset"), "150000");
  EXPECT_EQ(head.Header("Upload-Length"), "300000");
  EXPECT_EQ(head.Header("Cache-Control"), "no-store");
  // Not there until the last byte.
  EXPECT_EQ(Call("GET", "/api/v1/stat/2026/11/a.jpg", token).status, 404u);
  // Another device does not see the upload.
  std::string other = PairDevice("/Camera", false);
  EXPECT_EQ(Call("HEAD", location, other, "", kTus).status, 404u);
  Reply rest = Call("PATCH", location, token, data.substr(150000), TusPatch(150000));
  ASSERT_EQ(rest.status, 204u) << rest.body;
  EXPECT_EQ(rest.Header("Upload-Offset"), "300000");
  EXPECT_EQ(Call("GET", "/api/v1/files/2026/11/a.jpg", token).body, data);
  EXPECT_EQ(Call("GET", "/api/v1/stat/2026/11/a.jpg", token).Json()["mtime_ns"],
            int64_t{1700000000} * 1000000000);
  EXPECT_EQ(Call("HEAD", location, token, "", kTus).status, 404u);  // done: gone
  ASSERT_OK_AND_ASSIGN(auto orphans, drive_->catalog().Orphans());
  EXPECT_TRUE(orphans.empty());
}

TEST_F(ApiServiceTest, TusCreationWithUploadTerminationAndBadInput) {
  std::string token = PairDevice("/", false);
  Headers create = kTus;
  create.emplace_back("Upload-Length", "5");
  create.emplace_back("Upload-Metadata", "filename " + B64("hello.txt"));
  create.emplace_back("Content-Type", "application/offset+octet-stream");
  Reply made = Call("POST", "/api/v1/uploads", token, "hello", create);
  ASSERT_EQ(made.status, 201u) << made.body;
  EXPECT_EQ(made.Header("Upload-Offset"), "5");
  EXPECT_EQ(Call("GET", "/api/v1/files/hello.txt", token).body, "hello");

  // Terminated: gone, and nothing left behind.
  Headers later = kTus;
  later.emplace_back("Upload-Length", "100");
  later.emplace_back("Upload-Metadata", "path " + B64("later.bin"));
  Reply second = Call("POST", "/api/v1/uploads", token, "", later);
  ASSERT_EQ(second.status, 201u);
  ASSERT_EQ(Call("PATCH", second.Header("Location"), token, "0123456789", TusPatch(0)).status,
            204u);
  EXPECT_EQ(Call("DELETE", second.Header("Location"), token, "", kTus).status, 204u);
  EXPECT_EQ(Call("HEAD", second.Header("Location"), token, "", kTus).status, 404u);
  EXPECT_EQ(Call("GET", "/api/v1/stat/later.bin", token).status, 404u);
  ASSERT_OK_AND_ASSIGN(auto orphans, drive_->catalog().Orphans());
  EXPECT_TRUE(orphans.empty());

  // Bad input changes nothing.
  auto post = [&](Headers extra) {
    Headers h = kTus;
    h.insert(h.end(), extra.begin(), extra.end());
    return Call("POST", "/api/v1/uploads", token, "", h).status;
  };
  EXPECT_EQ(post({{"Upload-Metadata", "path " + B64("x")}}), 400u);  // no length
  EXPECT_EQ(post({{"Upload-Length", "1"}}), 400u);                   // no name
  EXPECT_EQ(post({{"Upload-Length", "1"}, {"Upload-Metadata", "path " + B64("../x")}}), 400u);
  EXPECT_EQ(post({{"Upload-Length", "1"}, {"Upload-Metadata", "path !!!"}}), 400u);
  EXPECT_EQ(post({{"Upload-Length", "1"}, {"Upload-Defer-Length", "1"}}), 400u);
  EXPECT_EQ(post({{"Upload-Length", std::to_string(uint64_t{1} << 40)},
                  {"Upload-Metadata", "path " + B64("huge")}}),
            413u);
  EXPECT_EQ(post({{"Upload-Length", "1"},
                  {"Upload-Metadata", "path " + B64("hello.txt") + ",overwrite " + B64("false")}}),
            412u);
  // Past the length.
  Reply small = Call("POST", "/api/v1/uploads", token, "", later);
  ASSERT_EQ(small.status, 201u);
  EXPECT_EQ(
      Call("PATCH", small.Header("Location"), token, std::string(101, 'x'), TusPatch(0)).status,
      413u);
  EXPECT_EQ(Call("PATCH", "/api/v1/uploads/nosuch", token, "x", TusPatch(0)).status, 404u);
  // A read-only device cannot upload.
  std::string reader = PairDevice("/", true);
  EXPECT_EQ(Call("POST", "/api/v1/uploads", reader, "", later).status, 403u);
  EXPECT_EQ(Call("POST", "/api/v1/uploads", "", "", later).status, 401u);
}

// --- WebDAV (litmus runs the protocol's own suite: cli/litmus_cli_test.sh) -----------------

TEST_F(ApiServiceTest, WebDavKeepsDeadPropertiesAndLocks) {
  std::string token = PairDevice("/", false);
  EXPECT_EQ(Call("OPTIONS", "/dav/", "").Header("DAV"), "1, 2");
  EXPECT_EQ(Call("PUT", "/dav/doc.txt", token, "hello").status, 201u);
  EXPECT_EQ(Call("PUT", "/dav/doc.txt", token, "hello again").status, 204u);
  Reply set = Call("PROPPATCH", "/dav/doc.txt", token,
                   "<?xml version=\"1.0\"?><D:propertyupdate xmlns:D=\"DAV:\" xmlns:Z=\"urn:z\">"
                   "<D:set><D:prop><Z:color>blue <Z:b>deep</Z:b></Z:color></D:prop></D:set>"
                   "</D:propertyupdate>");
  ASSERT_EQ(set.status, 207u) << set.body;
  EXPECT_NE(set.body.find("200 OK"), std::string::npos);
  // Kept with the file: moved with it, and read back with its markup.
  Reply moved = Call("MOVE", "/dav/doc.txt", token, "", {{"Destination", "/dav/moved.txt"}});
  EXPECT_EQ(moved.status, 201u) << moved.body;
  Reply got = Call("PROPFIND", "/dav/moved.txt", token,
                   "<propfind xmlns=\"DAV:\"><prop><color xmlns=\"urn:z\"/><getetag/>"
                   "<nothing xmlns=\"urn:z\"/></prop></propfind>",
                   {{"Depth", "0"}});
  ASSERT_EQ(got.status, 207u);
  EXPECT_NE(got.body.find("blue <Z:b>deep</Z:b>"), std::string::npos) << got.body;
  EXPECT_NE(got.body.find("404 Not Found"), std::string::npos);
  // A live property cannot be set; nothing of that PROPPATCH is kept.
  Reply live = Call("PROPPATCH", "/dav/moved.txt", token,
                    "<D:propertyupdate xmlns:D=\"DAV:\"><D:set><D:prop><D:getetag>x</D:getetag>"
                    "<Q:k xmlns:Q=\"urn:q\">v</Q:k></D:prop></D:set></D:propertyupdate>");
  EXPECT_NE(live.body.find("403 Forbidden"), std::string::npos);
  EXPECT_NE(live.body.find("424 Failed Dependency"), std::string::npos);
  // A lock keeps others out until its token is given.
  Reply lock = Call("LOCK", "/dav/moved.txt", token,
                    "<D:lockinfo xmlns:D=\"DAV:\"><D:lockscope><D:exclusive/></D:lockscope>"
                    "<D:locktype><D:write/></D:locktype></D:lockinfo>");
  ASSERT_EQ(lock.status, 200u) << lock.body;
  std::string lock_token = lock.Header("Lock-Token");
  ASSERT_FALSE(lock_token.empty());
  EXPECT_EQ(Call("PUT", "/dav/moved.txt", token, "x").status, 423u);
  EXPECT_EQ(Call("DELETE", "/dav/moved.txt", token).status, 423u);
  EXPECT_EQ(Call("PUT", "/dav/moved.txt", token, "x", {{"If", "(" + lock_token + ")"}}).status,
            204u);
  EXPECT_EQ(Call("UNLOCK", "/dav/moved.txt", token, "", {{"Lock-Token", lock_token}}).status, 204u);
  EXPECT_EQ(Call("DELETE", "/dav/moved.txt", token).status, 204u);
}

TEST_F(ApiServiceTest, WebDavRefusesBadInputAndChangesNothing) {
  std::string token = PairDevice("/Camera", false);
  Put("/secret.txt", "secret", "local");
  ASSERT_EQ(Call("PUT", "/dav/a.jpg", token, "photo").status, 201u);
  // No token: 401 with a Basic challenge, which WebDAV clients answer.
  Reply none = Call("PROPFIND", "/dav/", "", "", {{"Depth", "1"}});
  EXPECT_EQ(none.status, 401u);
  bool basic = false;
  for (const auto& [k, v] : none.headers)
    basic = basic || (k == "WWW-Authenticate" && v.rfind("Basic", 0) == 0);
  EXPECT_TRUE(basic);
  // Bodies that are not XML, not namespace-well-formed, or too large; infinite depth.
  EXPECT_EQ(Call("PROPFIND", "/dav/", token, "not xml", {{"Depth", "1"}}).status, 400u);
  EXPECT_EQ(
      Call("PROPFIND", "/dav/", token,
           "<propfind xmlns=\"DAV:\"><prop><x:a xmlns:x=\"\"/></prop></propfind>", {{"Depth", "0"}})
          .status,
      400u);
  EXPECT_EQ(Call("PROPFIND", "/dav/", token, "<D:propfind xmlns:D=\"DAV:\"><D:allprop/>",
                 {{"Depth", "0"}})
                .status,
            400u);
  {
    net::HttpRequestHead h;
    h.method = "PROPFIND";
    h.target = "/dav/";
    h.headers = {{"Authorization", "Bearer " + token}, {"Depth", "1"}};
    h.content_length = 64 << 20;
    net::Dispatch d = api_->Begin(h);
    ASSERT_TRUE(d.response);
    EXPECT_EQ(d.response->status, 413u);
  }
  EXPECT_EQ(Call("PROPFIND", "/dav/", token, "", {{"Depth", "infinity"}}).status, 403u);
  // The scope: a listing shows only it; paths and destinations cannot leave it.
  Reply list = Call("PROPFIND", "/dav/", token, "", {{"Depth", "1"}});
  ASSERT_EQ(list.status, 207u);
  EXPECT_NE(list.body.find("<D:href>/dav/a.jpg</D:href>"), std::string::npos) << list.body;
  EXPECT_EQ(list.body.find("secret"), std::string::npos);
  EXPECT_EQ(Call("GET", "/dav/%2e%2e/secret.txt", token).status, 400u);
  EXPECT_EQ(Call("COPY", "/dav/a.jpg", token, "", {{"Destination", "/dav/%2e%2e/x.jpg"}}).status,
            400u);
  EXPECT_EQ(Call("COPY", "/dav/a.jpg", token, "", {{"Destination", "/api/v1/files/x"}}).status,
            403u);
  EXPECT_EQ(Call("COPY", "/dav/a.jpg", token, "",
                 {{"Host", "127.0.0.1:8443"}, {"Destination", "https://evil.example:443/dav/x"}})
                .status,
            502u);
  EXPECT_EQ(Call("MOVE", "/dav/a.jpg", token, "", {{"Destination", "/dav/a.jpg"}}).status, 403u);
  EXPECT_EQ(Call("COPY", "/dav/a.jpg", token, "", {{"Destination", "/dav/no/such/x"}}).status,
            409u);
  EXPECT_EQ(Call("PUT", "/dav/no/such/x", token, "x").status, 409u);
  EXPECT_EQ(Call("MKCOL", "/dav/d", token, "<x/>").status, 415u);
  EXPECT_EQ(Call("PUT", "/dav/a.jpg", token, "x", {{"If", "(<opaquelocktoken:nope>)"}}).status,
            412u);
  EXPECT_EQ(Call("PUT", "/dav/a.jpg", token, "x", {{"If", "(<unclosed"}}).status, 400u);
  // Nothing changed.
  EXPECT_EQ(Call("GET", "/dav/a.jpg", token).body, "photo");
  EXPECT_EQ(Call("GET", "/api/v1/files/secret.txt", "local").body, "secret");
  ASSERT_OK_AND_ASSIGN(auto camera, drive_->Lookup(backend::kRootIno, "Camera"));
  ASSERT_OK_AND_ASSIGN(auto entries, drive_->ReadDir(camera.ino, "", 10));
  EXPECT_EQ(entries.size(), 1u);
  // A read-only device changes nothing through WebDAV either.
  std::string reader = PairDevice("/Camera", true);
  EXPECT_EQ(Call("PUT", "/dav/b.jpg", reader, "x").status, 403u);
  EXPECT_EQ(Call("DELETE", "/dav/a.jpg", reader).status, 403u);
  EXPECT_EQ(Call("PROPFIND", "/dav/", reader, "", {{"Depth", "1"}}).status, 207u);
}

TEST_F(ApiServiceTest, TheDashboardIsServedFromTheBinary) {
  Reply page = Call("GET", "/", "");
  ASSERT_EQ(page.status, 200u);
  EXPECT_NE(page.body.find("<title>shardfs</title>"), std::string::npos);
  EXPECT_EQ(page.Header("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(page.Header("Content-Security-Policy").rfind("default-src 'self'", 0), 0u);
  Reply js = Call("GET", "/assets/app.js", "");
  EXPECT_EQ(js.status, 200u);
  EXPECT_NE(js.body.find("/api/v1"), std::string::npos);
  EXPECT_EQ(Call("GET", "/assets/nothing.js", "").status, 404u);
  EXPECT_EQ(Call("POST", "/", "", "x").status, 404u);
}

}  // namespace
}  // namespace shardfs::api
