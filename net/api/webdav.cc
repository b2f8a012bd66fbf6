#include "net/api/webdav.h"

#include <array>
#include <cstring>
#include <set>

#include "base/bytes.h"
#include "base/logging.h"
#include "base/thread_annotations.h"
#include "base/wall_clock.h"
#include "crypto/hash.h"
#include "crypto/secret.h"
#include "net/api/api_http.h"
#include "net/api/download.h"
#include "net/api/scope.h"
#include "net/api/upload.h"
#include "net/api/webdav_xml.h"

namespace shardfs::api {

using backend::Drive;
using backend::FileKind;
using backend::Ino;
using backend::InodeAttr;
using dav::IfCondition;
using dav::IfList;
using dav::ParseIf;
using dav::QName;
using net::Dispatch;
using net::HttpRequestHead;
using net::HttpResponse;

namespace {

constexpr std::string_view kDavPrefix = "/dav";
// Dead properties are extended attributes with this prefix (docs/format.md, "WebDAV
// properties").
constexpr std::string_view kPropPrefix = "user.dav.";
constexpr size_t kCopyBuffer = 1 << 20;
constexpr int64_t kSecondNs = 1000000000;

HttpResponse Error(const Status& s, unsigned status = 0) {
  // A lock in the way is 423 Locked.
  if (status == 0 && s.code() == Code::kBusy) status = 423;
  return ErrorResponse(s, status);
}
Dispatch Fail(const Status& s, unsigned status = 0) { return Dispatch::Respond(Error(s, status)); }

HttpResponse Empty(unsigned status) {
  HttpResponse r;
  r.status = status;
  return r;
}

HttpResponse Xml(unsigned status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.headers.emplace_back("Content-Type", "application/xml; charset=utf-8");
  r.body = std::move(body);
  return r;
}

std::string StatusLine(unsigned status) {
  switch (status) {
    case 200:
      return "HTTP/1.1 200 OK";
    case 403:
      return "HTTP/1.1 403 Forbidden";
    case 404:
      return "HTTP/1.1 404 Not Found";
    case 409:
      return "HTTP/1.1 409 Conflict";
    case 424:
      return "HTTP/1.1 424 Failed Dependency";
    case 507:
      return "HTTP/1.1 507 Insufficient Storage";
    default:
      return "HTTP/1.1 " + std::to_string(status) + " Error";
  }
}

std::string Href(const Names& rel, bool collection) {
  std::string h = std::string(kDavPrefix) + EncodePath(rel);
  if (collection && h.back() != '/') h.push_back('/');
  return h;
}

Names Full(const Principal& who, const Names& rel) {
  Names full = who.root;
  full.insert(full.end(), rel.begin(), rel.end());
  return full;
}

// The xattr of dead property `q`: a hash of its name (names and namespaces may be long).
std::string PropKey(const QName& q) {
  std::string id = q.ns + '\0' + q.name;
  auto d = crypto::Sha256(AsBytes(id));
  return std::string(kPropPrefix) + HexEncode(ByteSpan(d.data(), 20));
}

// A dead property's stored value: namespace, NUL, name, NUL, its element as XML.
std::string PropValue(const QName& q, const std::string& xml) {
  return q.ns + '\0' + q.name + '\0' + xml;
}
std::optional<std::pair<QName, std::string>> ParsePropValue(const Bytes& v) {
  std::string s(v.begin(), v.end());
  size_t a = s.find('\0');
  if (a == std::string::npos) return std::nullopt;
  size_t b = s.find('\0', a + 1);
  if (b == std::string::npos) return std::nullopt;
  return std::make_pair(QName{s.substr(0, a), s.substr(a + 1, b - a - 1)}, s.substr(b + 1));
}

const char* ContentType(const std::string& name) {
  static const std::pair<const char*, const char*> kTypes[] = {
      {".jpg", "image/jpeg"},      {".jpeg", "image/jpeg"},       {".png", "image/png"},
      {".gif", "image/gif"},       {".heic", "image/heic"},       {".mp4", "video/mp4"},
      {".mov", "video/quicktime"}, {".pdf", "application/pdf"},   {".txt", "text/plain"},
      {".html", "text/html"},      {".json", "application/json"}, {".zip", "application/zip"}};
  for (const auto& [ext, type] : kTypes) {
    size_t n = std::strlen(ext);
    if (name.size() >= n && name.compare(name.size() - n, n, ext) == 0) return type;
  }
  return "application/octet-stream";
}

struct DavLock {
  std::string token;
  Names root;  // the locked resource, from the drive's root
  bool infinite = true;
  bool exclusive = true;
  std::string owner_xml;
  int64_t timeout_s = 0;
  int64_t expires_ns = 0;
};

// True if a lock on `root` (of that depth) covers `path`.
bool Covers(const DavLock& l, const Names& path) {
  if (l.root == path) return true;
  return l.infinite && path.size() > l.root.size() && IsWithin(path, l.root);
}

}  // namespace

class WebDav::Impl {
 public:
  Impl(ApiContext* ctx, WebDavOptions options, std::function<int64_t()> clock)
      : ctx_(ctx), options_(options), clock_(std::move(clock)) {}

  Dispatch Begin(const HttpRequestHead& head, std::string_view path, const Principal& who);

 private:
  int64_t Now() const { return clock_ ? clock_() : WallClockNs(); }
  Drive& drive() { return ctx_->drive(); }

  // The request's context once its path is decoded and its If header checked.
  struct Request {
    const HttpRequestHead* head = nullptr;  // for the synchronous part only
    Principal who;
    Names rel;
    Names full;
    std::set<std::string> tokens;  // lock tokens submitted in the If header
  };

  Dispatch Options();
  Dispatch Propfind(const Request& r);
  Dispatch Proppatch(const Request& r);
  Dispatch Mkcol(const Request& r);
  Dispatch Get(const Request& r);
  Dispatch Put(const Request& r);
  Dispatch Delete(const Request& r);
  Dispatch CopyMove(const Request& r, bool move);
  Dispatch Lock(const Request& r);
  Dispatch Unlock(const Request& r);

  // The body of a request, up to max_xml_body, then `handle`.
  Dispatch XmlBody(const HttpRequestHead& head, std::function<HttpResponse(std::string)> handle);

  // A URL of a Destination header or an If header's tag: the names it gives within the
  // device's scope. BadGateway-worthy (another host) is reported as kUnavailable.
  Result<Names> UrlNames(const HttpRequestHead& head, std::string_view url);

  // If header: OK if absent or true; InvalidArgument if malformed; AlreadyExists (412) if
  // false. Collects the lock tokens it submits.
  Status CheckIf(Request* r);
  bool ConditionHolds(const IfCondition& c, const Names& full, const Principal& who,
                      const Names& rel);

  // Busy (423) if a lock the request did not submit is in the way of changing `full`: one
  // covering it, with `subtree` one on anything below it, with `membership` one on its
  // folder (adding or removing a member changes the folder).
  Status CheckLocks(const Request& r, const Names& full, bool subtree, bool membership);
  void ExpireLocked() REQUIRES(locks_mu_);
  // True if a held lock rules out the new lock `l`: one that overlaps it (covers its root, or,
  // for a lock of depth infinity, lies below it) where either is exclusive.
  bool ConflictsLocked(const DavLock& l) REQUIRES(locks_mu_);
  // Drops the locks on `full` and below (it was deleted or moved away).
  void DropLocksWithin(const Names& full);
  std::string ActiveLockXml(const DavLock& l, const Principal& who);
  std::string LockDiscoveryXml(const Names& full, const Principal& who);

  // The XML of property `q` of the resource (`rel`, `a`), or nullopt if it has none.
  std::optional<std::string> Property(const QName& q, const Names& rel, const InodeAttr& a,
                                      const Principal& who);
  // The names of its properties: the live ones, and the dead ones with their XML.
  std::vector<QName> LiveNames(const InodeAttr& a);
  std::vector<std::pair<QName, std::string>> DeadProperties(Ino ino);
  std::string ResponseXml(const dav::PropfindRequest& req, const Names& rel, const InodeAttr& a,
                          const Principal& who);

  Status CopyTree(const InodeAttr& src, Ino dst_parent, const std::string& name, bool deep);
  Status CopyProperties(Ino from, Ino to);

  ApiContext* ctx_;
  const WebDavOptions options_;
  std::function<int64_t()> clock_;
  Mutex locks_mu_;
  std::map<std::string, DavLock> locks_ GUARDED_BY(locks_mu_);
};

Dispatch WebDav::Impl::XmlBody(const HttpRequestHead& head,
                               std::function<HttpResponse(std::string)> handle) {
  return CollectBody(head, options_.max_xml_body, std::move(handle));
}

Result<Names> WebDav::Impl::UrlNames(const HttpRequestHead& head, std::string_view url) {
  std::string_view path = url;
  for (std::string_view scheme : {"http://", "https://"}) {
    if (url.size() > scheme.size() && url.substr(0, scheme.size()) == scheme) {
      std::string_view rest = url.substr(scheme.size());
      size_t slash = rest.find('/');
      std::string_view authority = rest.substr(0, slash);
      std::string_view host = head.Header("Host");
      bool same = authority.size() == host.size();
      for (size_t i = 0; same && i < host.size(); ++i) {
        same = std::tolower(static_cast<unsigned char>(authority[i])) ==
               std::tolower(static_cast<unsigned char>(host[i]));
      }
      if (!same) {
        return Status::Unavailable("the destination is on another server (" +
                                   std::string(authority) + ")");
      }
      path = slash == std::string_view::npos ? "/" : rest.substr(slash);
    }
  }
  path = path.substr(0, path.find_first_of("?#"));
  if (path.substr(0, kDavPrefix.size()) != kDavPrefix ||
      (path.size() > kDavPrefix.size() && path[kDavPrefix.size()] != '/')) {
    return Status::PermissionDenied("the destination is outside " + std::string(kDavPrefix));
  }
  return DecodePath(path.substr(kDavPrefix.size()));
}

bool WebDav::Impl::ConditionHolds(const IfCondition& c, const Names& full, const Principal& who,
                                  const Names& rel) {
  bool holds = false;
  if (c.etag) {
    auto at = Locate(drive(), who, rel);
    std::string_view want = c.value;
    if (want.substr(0, 2) == "W/") want.remove_prefix(2);
    holds = at.ok() && at->attr && ETagOf(*at->attr) == want;
  } else {
    MutexLock lock(&locks_mu_);
    ExpireLocked();
    for (const auto& [token, l] : locks_) {
      if (token == c.value && Covers(l, full)) holds = true;
    }
  }
  return c.negate ? !holds : holds;
}

Status WebDav::Impl::CheckIf(Request* r) {
  std::string_view header = r->head->Header("If");
  if (header.empty()) return Status::Ok();
  SFS_ASSIGN_OR_RETURN(auto lists, ParseIf(header));
  bool any = false;
  for (const IfList& list : lists) {
    for (const auto& c : list.conditions) {
      if (!c.etag && !c.negate) r->tokens.insert(c.value);
    }
    Names rel = r->rel;
    if (list.resource) {
      auto names = UrlNames(*r->head, *list.resource);
      if (!names.ok()) continue;  // a list about another resource cannot hold
      rel = *names;
    }
    Names full = Full(r->who, rel);
    bool all = true;
    for (const auto& c : list.conditions) all = all && ConditionHolds(c, full, r->who, rel);
    any = any || all;
  }
  if (!any) return Status::AlreadyExists("the If header's conditions do not hold");
  return Status::Ok();
}

void WebDav::Impl::ExpireLocked() {
  const int64_t now = Now();
  for (auto it = locks_.begin(); it != locks_.end();) {
    it = it->second.expires_ns <= now ? locks_.erase(it) : std::next(it);
  }
}

Status WebDav::Impl::CheckLocks(const Request& r, const Names& full, bool subtree,
                                bool membership) {
  MutexLock lock(&locks_mu_);
  ExpireLocked();
  Names parent = full;
  if (!parent.empty()) parent.pop_back();
  for (const auto& [token, l] : locks_) {
    bool in_way = Covers(l, full) || (subtree && IsWithin(l.root, full)) ||
                  (membership && !full.empty() && l.root == parent);
    if (in_way && r.tokens.count(token) == 0) {
      return Status::Busy("'" + JoinPath(full) + "' is locked; submit its lock token");
    }
  }
  return Status::Ok();
}

bool WebDav::Impl::ConflictsLocked(const DavLock& l) {
  for (const auto& [token, other] : locks_) {
    bool overlap = Covers(other, l.root) || (l.infinite && IsWithin(other.root, l.root));
    if (overlap && (other.exclusive || l.exclusive)) return true;
  }
  return false;
}

void WebDav::Impl::DropLocksWithin(const Names& full) {
  MutexLock lock(&locks_mu_);
  for (auto it = locks_.begin(); it != locks_.end();) {
    it = IsWithin(it->second.root, full) ? locks_.erase(it) : std::next(it);
  }
}

std::string WebDav::Impl::ActiveLockXml(const DavLock& l, const Principal& who) {
  Names rel(l.root.begin() + static_cast<ptrdiff_t>(std::min(who.root.size(), l.root.size())),
            l.root.end());
  std::string x = "<D:activelock><D:locktype><D:write/></D:locktype><D:lockscope>";
  x += l.exclusive ? "<D:exclusive/>" : "<D:shared/>";
  x += "</D:lockscope><D:depth>";
  x += l.infinite ? "infinity" : "0";
  x += "</D:depth>" + l.owner_xml + "<D:timeout>Second-" + std::to_string(l.timeout_s) +
       "</D:timeout><D:locktoken><D:href>" + dav::XmlEscape(l.token) +
       "</D:href></D:locktoken><D:lockroot><D:href>" + dav::XmlEscape(Href(rel, false)) +
       "</D:href></D:lockroot></D:activelock>";
  return x;
}

std::string WebDav::Impl::LockDiscoveryXml(const Names& full, const Principal& who) {
  MutexLock lock(&locks_mu_);
  ExpireLocked();
  std::string x = "<D:lockdiscovery>";
  for (const auto& [token, l] : locks_) {
    if (Covers(l, full)) x += ActiveLockXml(l, who);
  }
  return x + "</D:lockdiscovery>";
}

std::vector<QName> WebDav::Impl::LiveNames(const InodeAttr& a) {
  std::vector<QName> names;
  const std::string d(dav::kDavNs);
  for (const char* n : {"creationdate", "displayname", "getlastmodified", "resourcetype",
                        "supportedlock", "lockdiscovery"}) {
    names.push_back({d, n});
  }
  if (a.kind != FileKind::kDirectory) {
    for (const char* n : {"getcontentlength", "getcontenttype", "getetag"}) names.push_back({d, n});
  }
  return names;
}

std::vector<std::pair<QName, std::string>> WebDav::Impl::DeadProperties(Ino ino) {
  std::vector<std::pair<QName, std::string>> out;
  auto names = drive().ListXattr(ino);
  if (!names.ok()) return out;
  for (const std::string& key : *names) {
    if (key.rfind(kPropPrefix, 0) != 0) continue;
    auto v = drive().GetXattr(ino, key);
    if (!v.ok()) continue;
    if (auto p = ParsePropValue(*v)) out.push_back(std::move(*p));
  }
  return out;
}

std::optional<std::string> WebDav::Impl::Property(const QName& q, const Names& rel,
                                                  const InodeAttr& a, const Principal& who) {
  if (q.ns == dav::kDavNs) {
    const bool dir = a.kind == FileKind::kDirectory;
    const std::string& n = q.name;
    auto el = [&](const std::string& value) {
      return "<D:" + n + ">" + dav::XmlEscape(value) + "</D:" + n + ">";
    };
    if (n == "creationdate") return el(FormatRfc3339(a.ctime_ns));
    if (n == "displayname") return el(rel.empty() ? "" : rel.back());
    if (n == "getlastmodified") return el(FormatHttpDate(a.mtime_ns));
    if (n == "resourcetype") {
      return dir ? "<D:resourcetype><D:collection/></D:resourcetype>" : "<D:resourcetype/>";
    }
    if (n == "supportedlock") {
      return "<D:supportedlock><D:lockentry><D:lockscope><D:exclusive/></D:lockscope>"
             "<D:locktype><D:write/></D:locktype></D:lockentry><D:lockentry><D:lockscope>"
             "<D:shared/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>"
             "</D:supportedlock>";
    }
    if (n == "lockdiscovery") return LockDiscoveryXml(Full(who, rel), who);
    if (!dir) {
      if (n == "getcontentlength") return el(std::to_string(a.size));
      if (n == "getcontenttype") return el(ContentType(rel.empty() ? "" : rel.back()));
      if (n == "getetag") return el(ETagOf(a));
    }
  }
  auto v = drive().GetXattr(a.ino, PropKey(q));
  if (!v.ok()) return std::nullopt;
  auto p = ParsePropValue(*v);
  if (!p || !(p->first == q)) return std::nullopt;
  return p->second;
}

std::string WebDav::Impl::ResponseXml(const dav::PropfindRequest& req, const Names& rel,
                                      const InodeAttr& a, const Principal& who) {
  const bool dir = a.kind == FileKind::kDirectory;
  std::string x = "<D:response><D:href>" + dav::XmlEscape(Href(rel, dir)) + "</D:href>";
  std::string found, missing;
  using Kind = dav::PropfindRequest::Kind;
  if (req.kind == Kind::kProp) {
    for (const QName& q : req.props) {
      if (auto v = Property(q, rel, a, who)) {
        found += *v;
      } else {
        missing += q.ns == dav::kDavNs ? "<D:" + q.name + "/>" : dav::EmptyPropertyXml(q);
      }
    }
  } else {
    for (const QName& q : LiveNames(a)) {
      if (req.kind == Kind::kPropName) {
        found += "<D:" + q.name + "/>";
      } else if (auto v = Property(q, rel, a, who)) {
        found += *v;
      }
    }
    for (const auto& [q, xml] : DeadProperties(a.ino)) {
      found += req.kind == Kind::kPropName ? dav::EmptyPropertyXml(q) : xml;
    }
  }
  if (!found.empty() || missing.empty()) {
    x += "<D:propstat><D:prop>" + found + "</D:prop><D:status>" + StatusLine(200) +
         "</D:status></D:propstat>";
  }
  if (!missing.empty()) {
    x += "<D:propstat><D:prop>" + missing + "</D:prop><D:status>" + StatusLine(404) +
         "</D:status></D:propstat>";
  }
  return x + "</D:response>";
}

Dispatch WebDav::Impl::Options() {
  HttpResponse r = Empty(200);
  r.headers.emplace_back("DAV", "1, 2");
  r.headers.emplace_back("MS-Author-Via", "DAV");
  r.headers.emplace_back("Allow",
                         "OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, PROPPATCH, MKCOL, COPY, MOVE, "
                         "LOCK, UNLOCK");
  return Dispatch::Respond(std::move(r));
}

Dispatch WebDav::Impl::Propfind(const Request& r) {
  std::string_view depth = r.head->Header("Depth");
  if (depth.empty() || depth == "infinity") {
    return Dispatch::Respond(
        Xml(403,
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:error xmlns:D=\"DAV:\">"
            "<D:propfind-finite-depth/></D:error>"));
  }
  if (depth != "0" && depth != "1") return Fail(Status::InvalidArgument("Depth is 0 or 1"));
  const bool children = depth == "1";
  return XmlBody(*r.head, [this, r, children](std::string body) {
    auto req = dav::ParsePropfind(body);
    if (!req.ok()) return Error(req.status());
    auto at = Locate(drive(), r.who, r.rel);
    if (!at.ok()) return Error(at.status());
    if (!at->attr) return Error(Status::NotFound("no '" + JoinPath(r.rel) + "'"));
    std::string x = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:multistatus xmlns:D=\"DAV:\">";
    x += ResponseXml(*req, r.rel, *at->attr, r.who);
    if (children && at->attr->kind == FileKind::kDirectory) {
      std::string after;
      while (true) {
        auto page = drive().ReadDir(at->attr->ino, after, 1000);
        if (!page.ok()) return Error(page.status());
        for (const auto& e : *page) {
          Names child = r.rel;
          child.push_back(e.name);
          x += ResponseXml(*req, child, e.attr, r.who);
        }
        if (page->size() < 1000) break;
        after = page->back().name;
      }
    }
    x += "</D:multistatus>\n";
    return Xml(207, std::move(x));
  });
}

Dispatch WebDav::Impl::Proppatch(const Request& r) {
  if (Status s = CheckLocks(r, r.full, false, false); !s.ok()) return Fail(s);
  return XmlBody(*r.head, [this, r](std::string body) {
    auto ops = dav::ParsePropPatch(body);
    if (!ops.ok()) return Error(ops.status());
    auto at = Locate(drive(), r.who, r.rel);
    if (!at.ok()) return Error(at.status());
    if (!at->attr) return Error(Status::NotFound("no '" + JoinPath(r.rel) + "'"));
    const Ino ino = at->attr->ino;
    // All or nothing: the live (DAV:) properties cannot be set; then each op in order, and if
    // one fails, the values from before are put back.
    std::vector<unsigned> result(ops->size(), 200);
    bool failed = false;
    for (size_t i = 0; i < ops->size(); ++i) {
      if ((*ops)[i].name.ns == dav::kDavNs) {
        result[i] = 403;
        failed = true;
      }
    }
    std::map<std::string, std::optional<Bytes>> before;
    if (!failed) {
      for (size_t i = 0; i < ops->size(); ++i) {
        const auto& op = (*ops)[i];
        std::string key = PropKey(op.name);
        if (!before.count(key)) {
          auto old = drive().GetXattr(ino, key);
          before[key] = old.ok() ? std::optional<Bytes>(*old) : std::nullopt;
        }
        Status s;
        if (op.remove) {
          s = drive().RemoveXattr(ino, key);
          if (s.code() == Code::kNoAttribute) s = Status::Ok();
        } else {
          s = drive().SetXattr(ino, key, AsBytes(PropValue(op.name, op.xml)),
                               backend::XattrMode::kAny);
        }
        if (!s.ok()) {
          result[i] = s.code() == Code::kOutOfRange || s.code() == Code::kNoSpace ? 507 : 409;
          failed = true;
          break;
        }
      }
      if (failed) {
        for (const auto& [key, value] : before) {
          if (value) {
            (void)drive().SetXattr(ino, key, *value, backend::XattrMode::kAny);
          } else {
            (void)drive().RemoveXattr(ino, key);
          }
        }
      }
    }
    std::string x =
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:multistatus xmlns:D=\"DAV:\">"
        "<D:response><D:href>" +
        dav::XmlEscape(Href(r.rel, at->attr->kind == FileKind::kDirectory)) + "</D:href>";
    for (size_t i = 0; i < ops->size(); ++i) {
      unsigned status = failed && result[i] == 200 ? 424 : result[i];
      const QName& q = (*ops)[i].name;
      x += "<D:propstat><D:prop>" +
           (q.ns == dav::kDavNs ? "<D:" + q.name + "/>" : dav::EmptyPropertyXml(q)) +
           "</D:prop><D:status>" + StatusLine(status) + "</D:status></D:propstat>";
    }
    x += "</D:response></D:multistatus>\n";
    ctx_->InvalidateInode(ino);
    return Xml(207, std::move(x));
  });
}

Dispatch WebDav::Impl::Mkcol(const Request& r) {
  if (r.head->has_body()) {
    return Fail(Status::NotSupported("MKCOL with a body is not understood"), 415);
  }
  if (r.rel.empty()) return Fail(Status::AlreadyExists("the root exists"), 405);
  auto at = Locate(drive(), r.who, r.rel);
  if (!at.ok()) return Fail(at.status(), 409);
  if (at->attr) return Fail(Status::AlreadyExists("'" + JoinPath(r.rel) + "' exists"), 405);
  if (Status s = CheckLocks(r, r.full, false, true); !s.ok()) return Fail(s);
  backend::NewInode how;
  how.mode = 0755;
  auto made = drive().Mkdir(at->parent, at->name, how);
  if (!made.ok()) return Fail(made.status());
  ctx_->InvalidateEntry(at->parent, at->name);
  return Dispatch::Respond(Empty(201));
}

Dispatch WebDav::Impl::Get(const Request& r) {
  auto at = Locate(drive(), r.who, r.rel);
  if (!at.ok()) return Fail(at.status());
  if (!at->attr) return Fail(Status::NotFound("no '" + JoinPath(r.rel) + "'"));
  if (at->attr->kind == FileKind::kFile) {
    return Dispatch::Respond(FileResponse(drive(), *at->attr, *r.head));
  }
  if (at->attr->kind == FileKind::kSymlink) {
    return Fail(Status::NotSupported("a symlink has no contents to serve"), 404);
  }
  // A folder: a plain listing for a browser.
  std::string html = "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>" +
                     dav::XmlEscape(JoinPath(r.rel)) + "</title></head><body><h1>" +
                     dav::XmlEscape(JoinPath(r.rel)) + "</h1><ul>";
  auto page = drive().ReadDir(at->attr->ino, "", 1000);
  if (!page.ok()) return Fail(page.status());
  for (const auto& e : *page) {
    Names child = r.rel;
    child.push_back(e.name);
    html += "<li><a href=\"" + dav::XmlEscape(Href(child, e.attr.kind == FileKind::kDirectory)) +
            "\">" + dav::XmlEscape(e.name) + "</a></li>";
  }
  html += "</ul></body></html>\n";
  HttpResponse resp;
  resp.headers.emplace_back("Content-Type", "text/html; charset=utf-8");
  resp.body = std::move(html);
  resp.head_only = r.head->method == "HEAD";
  return Dispatch::Respond(std::move(resp));
}

Dispatch WebDav::Impl::Put(const Request& r) {
  if (r.rel.empty()) return Fail(Status::IsDirectory("the root is a folder"), 405);
  auto at = Locate(drive(), r.who, r.rel);
  if (!at.ok()) return Fail(at.status(), at.status().code() == Code::kNotFound ? 409 : 0);
  if (at->attr && at->attr->kind == FileKind::kDirectory) {
    return Fail(Status::IsDirectory("'" + JoinPath(r.rel) + "' is a folder"), 405);
  }
  if (Status s = CheckLocks(r, r.full, false, !at->attr); !s.ok()) return Fail(s);
  PutRequest put;
  put.conditions = {std::string(r.head->Header("If-Match")),
                    std::string(r.head->Header("If-None-Match"))};
  if (Status s = CheckConditions(put.conditions, at->attr); !s.ok()) return Fail(s, 412);
  uint64_t limit = ctx_->FreeSpace().value_or(uint64_t{1} << 40);
  if (r.head->content_length && *r.head->content_length > limit) {
    return Fail(Status::NoSpace("larger than the drive's free space (" + std::to_string(limit) +
                                " bytes)"));
  }
  put.mtime_ns = ParseEpochSeconds(r.head->Header("X-OC-Mtime"));
  put.length = r.head->content_length;
  put.target = std::move(*at);
  const bool mtime = put.mtime_ns.has_value();
  auto sink = StartPut(
      ctx_, std::move(put),
      [mtime](const InodeAttr& a, bool replaced) {
        HttpResponse resp = Empty(replaced ? 204 : 201);
        resp.headers.emplace_back("ETag", ETagOf(a));
        // As ownCloud answers a client that set the mtime.
        if (mtime) resp.headers.emplace_back("X-OC-Mtime", "accepted");
        return resp;
      },
      [](const Status& s, unsigned status) { return Error(s, status); });
  if (!sink.ok()) return Fail(sink.status());
  return Dispatch::Stream(std::move(*sink), limit);
}

Dispatch WebDav::Impl::Delete(const Request& r) {
  if (r.rel.empty()) return Fail(Status::PermissionDenied("the root of this device's scope stays"));
  auto at = Locate(drive(), r.who, r.rel);
  if (!at.ok()) return Fail(at.status());
  if (!at->attr) return Fail(Status::NotFound("no '" + JoinPath(r.rel) + "'"));
  if (Status s = CheckLocks(r, r.full, true, true); !s.ok()) return Fail(s);
  if (Status s = drive().RemoveTree(at->parent, at->name); !s.ok()) return Fail(s);
  DropLocksWithin(r.full);
  ctx_->InvalidateEntry(at->parent, at->name);
  return Dispatch::Respond(Empty(204));
}

Status WebDav::Impl::CopyProperties(Ino from, Ino to) {
  SFS_ASSIGN_OR_RETURN(auto names, drive().ListXattr(from));
  for (const std::string& key : names) {
    SFS_ASSIGN_OR_RETURN(Bytes v, drive().GetXattr(from, key));
    SFS_RETURN_IF_ERROR(drive().SetXattr(to, key, v, backend::XattrMode::kAny));
  }
  return Status::Ok();
}

Status WebDav::Impl::CopyTree(const InodeAttr& src, Ino dst_parent, const std::string& name,
                              bool deep) {
  Drive& d = drive();
  if (src.kind == FileKind::kSymlink) {
    SFS_ASSIGN_OR_RETURN(std::string target, d.ReadLink(src.ino));
    return d.Symlink(dst_parent, name, target).status();
  }
  if (src.kind == FileKind::kDirectory) {
    backend::NewInode how;
    how.mode = src.mode;
    SFS_ASSIGN_OR_RETURN(InodeAttr made, d.Mkdir(dst_parent, name, how));
    SFS_RETURN_IF_ERROR(CopyProperties(src.ino, made.ino));
    if (!deep) return Status::Ok();
    std::string after;
    while (true) {
      SFS_ASSIGN_OR_RETURN(auto page, d.ReadDir(src.ino, after, 1000));
      for (const auto& e : page) SFS_RETURN_IF_ERROR(CopyTree(e.attr, made.ino, e.name, true));
      if (page.size() < 1000) return Status::Ok();
      after = page.back().name;
    }
  }
  // A file: its bytes into a file with no name, which takes its name once whole.
  backend::NewInode how;
  how.mode = src.mode;
  SFS_ASSIGN_OR_RETURN(InodeAttr copy, d.CreateUnlinked(how));
  Bytes buf(static_cast<size_t>(std::min<uint64_t>(kCopyBuffer, std::max<uint64_t>(src.size, 1))));
  Status s;
  for (uint64_t off = 0; off < src.size && s.ok();) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), src.size - off));
    auto n = d.Read(src.ino, off, MutableByteSpan(buf.data(), want));
    if (!n.ok()) {
      s = n.status();
    } else if (*n == 0) {
      s = Status::IOError("the file got shorter while it was copied");
    } else {
      s = d.Write(copy.ino, off, ByteSpan(buf.data(), *n));
      off += *n;
    }
  }
  if (s.ok()) s = d.Flush(copy.ino);
  if (s.ok()) s = d.LinkUnlinked(copy.ino, dst_parent, name, false).status();
  if (s.ok()) s = CopyProperties(src.ino, copy.ino);
  Status released = d.Release(copy.ino);
  return s.ok() ? released : s;
}

Dispatch WebDav::Impl::CopyMove(const Request& r, bool move) {
  std::string_view dest_header = r.head->Header("Destination");
  if (dest_header.empty()) return Fail(Status::InvalidArgument("no Destination header"));
  auto dest = UrlNames(*r.head, dest_header);
  if (!dest.ok()) {
    return Fail(dest.status(), dest.status().code() == Code::kUnavailable ? 502 : 0);
  }
  if (r.rel.empty()) return Fail(Status::PermissionDenied("the root of this scope stays"));
  if (dest->empty()) return Fail(Status::PermissionDenied("the root of this scope is taken"));
  const Names dest_full = Full(r.who, *dest);
  if (dest_full == r.full) return Fail(Status::PermissionDenied("source and destination are one"));
  std::string_view overwrite_header = r.head->Header("Overwrite");
  if (!overwrite_header.empty() && overwrite_header != "T" && overwrite_header != "F") {
    return Fail(Status::InvalidArgument("Overwrite is T or F"));
  }
  const bool overwrite = overwrite_header != "F";
  std::string_view depth = r.head->Header("Depth");
  if (!depth.empty() && depth != "infinity" && (move || depth != "0")) {
    return Fail(Status::InvalidArgument(move ? "a MOVE is of depth infinity"
                                             : "a COPY is of depth 0 or infinity"));
  }
  auto src = Locate(drive(), r.who, r.rel);
  if (!src.ok()) return Fail(src.status());
  if (!src->attr) return Fail(Status::NotFound("no '" + JoinPath(r.rel) + "'"));
  if (src->attr->kind == FileKind::kDirectory && IsWithin(dest_full, r.full)) {
    return Fail(Status::PermissionDenied("a folder cannot go into itself"));
  }
  auto dst = Locate(drive(), r.who, *dest);
  if (!dst.ok()) return Fail(dst.status(), dst.status().code() == Code::kNotFound ? 409 : 0);
  if (move) {
    if (Status s = CheckLocks(r, r.full, true, true); !s.ok()) return Fail(s);
  }
  if (Status s = CheckLocks(r, dest_full, dst->attr.has_value(), true); !s.ok()) return Fail(s);
  const bool existed = dst->attr.has_value();
  if (existed) {
    if (!overwrite) return Fail(Status::AlreadyExists("the destination exists"), 412);
    if (Status s = drive().RemoveTree(dst->parent, dst->name); !s.ok()) return Fail(s);
    DropLocksWithin(dest_full);
    ctx_->InvalidateEntry(dst->parent, dst->name);
  }
  Status s;
  if (move) {
    s = drive().Rename(src->parent, src->name, dst->parent, dst->name,
                       backend::RenameMode::kNoReplace);
    if (s.ok()) {
      DropLocksWithin(r.full);
      ctx_->InvalidateEntry(src->parent, src->name);
    }
  } else {
    s = CopyTree(*src->attr, dst->parent, dst->name, depth != "0");
  }
  ctx_->InvalidateEntry(dst->parent, dst->name);
  if (!s.ok()) return Fail(s);
  return Dispatch::Respond(Empty(existed ? 204 : 201));
}

Dispatch WebDav::Impl::Lock(const Request& r) {
  std::string_view depth = r.head->Header("Depth");
  if (!depth.empty() && depth != "0" && depth != "infinity") {
    return Fail(Status::InvalidArgument("a LOCK is of depth 0 or infinity"));
  }
  int64_t timeout = options_.default_lock_seconds;
  for (std::string_view t : SplitOn(r.head->Header("Timeout"), ',')) {
    while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
    if (t.rfind("Second-", 0) == 0) {
      auto n = t.size() < 7 + 12 ? ParseDecimal(t.substr(7)) : std::nullopt;
      if (n) {
        timeout = static_cast<int64_t>(std::min<uint64_t>(*n, options_.max_lock_seconds));
        break;
      }
    } else if (t == "Infinite") {
      timeout = options_.max_lock_seconds;
      break;
    }
  }
  if (timeout <= 0) timeout = options_.default_lock_seconds;
  return XmlBody(*r.head, [this, r, infinite = depth != "0", timeout](std::string body) {
    const std::string xml_head =
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:prop xmlns:D=\"DAV:\"><D:lockdiscovery>";
    if (body.find_first_not_of(" \t\r\n") == std::string::npos) {
      // A refresh: of the lock whose token the If header submits.
      MutexLock lock(&locks_mu_);
      ExpireLocked();
      for (auto& [token, l] : locks_) {
        if (r.tokens.count(token) && Covers(l, r.full)) {
          l.timeout_s = timeout;
          l.expires_ns = Now() + timeout * kSecondNs;
          return Xml(200, xml_head + ActiveLockXml(l, r.who) + "</D:lockdiscovery></D:prop>\n");
        }
      }
      return Error(Status::InvalidArgument("a LOCK without a body refreshes a lock whose token "
                                           "the If header gives"),
                   412);
    }
    auto req = dav::ParseLockInfo(body);
    if (!req.ok()) return Error(req.status());
    auto at = Locate(drive(), r.who, r.rel);
    if (!at.ok()) return Error(at.status(), at.status().code() == Code::kNotFound ? 409 : 0);
    DavLock l;
    std::array<uint8_t, 16> id;
    crypto::RandomBytes(id);
    std::string hex = HexEncode(id);
    l.token = "opaquelocktoken:" + hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" +
              hex.substr(12, 4) + "-" + hex.substr(16, 4) + "-" + hex.substr(20);
    l.root = r.full;
    l.infinite = infinite && (!at->attr || at->attr->kind == FileKind::kDirectory);
    l.exclusive = req->exclusive;
    l.owner_xml = req->owner_xml;
    l.timeout_s = timeout;
    l.expires_ns = Now() + timeout * kSecondNs;
    {
      MutexLock lock(&locks_mu_);
      ExpireLocked();
      if (locks_.size() >= options_.max_locks) {
        return Error(Status::Unavailable("too many locks held"), 503);
      }
      if (ConflictsLocked(l)) {
        return Error(Status::Busy("'" + JoinPath(r.rel) + "' is locked already"));
      }
    }
    unsigned status = 200;
    if (!at->attr) {
      // A lock on an unmapped name makes an empty file (RFC 4918, 9.10.4).
      if (Status s = CheckLocks(r, r.full, false, true); !s.ok()) return Error(s);
      backend::NewInode how;
      how.mode = 0644;
      auto made = drive().Create(at->parent, at->name, how);
      if (!made.ok()) return Error(made.status());
      ctx_->InvalidateEntry(at->parent, at->name);
      status = 201;
    }
    HttpResponse resp;
    {
      MutexLock lock(&locks_mu_);
      // Checked again: another LOCK may have come meanwhile.
      if (ConflictsLocked(l)) {
        return Error(Status::Busy("'" + JoinPath(r.rel) + "' is locked already"));
      }
      locks_[l.token] = l;
      resp = Xml(status, xml_head + ActiveLockXml(l, r.who) + "</D:lockdiscovery></D:prop>\n");
    }
    resp.headers.emplace_back("Lock-Token", "<" + l.token + ">");
    return resp;
  });
}

Dispatch WebDav::Impl::Unlock(const Request& r) {
  std::string_view h = r.head->Header("Lock-Token");
  if (h.size() < 2 || h.front() != '<' || h.back() != '>') {
    return Fail(Status::InvalidArgument("UNLOCK needs Lock-Token: <token>"));
  }
  std::string token(h.substr(1, h.size() - 2));
  MutexLock lock(&locks_mu_);
  ExpireLocked();
  auto it = locks_.find(token);
  if (it == locks_.end() || !Covers(it->second, r.full)) {
    return Fail(Status::InvalidArgument("no such lock on this resource"), 409);
  }
  locks_.erase(it);
  return Dispatch::Respond(Empty(204));
}

Dispatch WebDav::Impl::Begin(const HttpRequestHead& head, std::string_view path,
                             const Principal& who) {
  const std::string& m = head.method;
  log::Debug("dav {} {}{}{}", m, head.target,
             head.Header("If").empty() ? "" : " If: ", head.Header("If"));
  if (m == "OPTIONS") return Options();
  auto rel = DecodePath(path.substr(0, path.find('?')));
  if (!rel.ok()) return Fail(rel.status());
  Request r;
  r.head = &head;
  r.who = who;
  r.rel = std::move(*rel);
  r.full = Full(who, r.rel);
  static const std::set<std::string> kWrites = {"PUT",  "DELETE",    "MKCOL", "COPY",
                                                "MOVE", "PROPPATCH", "LOCK",  "UNLOCK"};
  if (who.read_only && kWrites.count(m)) {
    return Fail(Status::PermissionDenied("this device may only read"));
  }
  if (Status s = CheckIf(&r); !s.ok()) {
    return Fail(s, s.code() == Code::kAlreadyExists ? 412 : 0);
  }
  if (m == "PROPFIND") return Propfind(r);
  if (m == "PROPPATCH") return Proppatch(r);
  if (m == "MKCOL") return Mkcol(r);
  if (m == "GET" || m == "HEAD") return Get(r);
  if (m == "PUT") return Put(r);
  if (m == "DELETE") return Delete(r);
  if (m == "COPY") return CopyMove(r, false);
  if (m == "MOVE") return CopyMove(r, true);
  if (m == "LOCK") return Lock(r);
  if (m == "UNLOCK") return Unlock(r);
  HttpResponse resp = Error(Status::NotSupported(m + " is not a WebDAV method served here"), 405);
  resp.headers.emplace_back("Allow",
                            "OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, PROPPATCH, MKCOL, COPY, "
                            "MOVE, LOCK, UNLOCK");
  return Dispatch::Respond(std::move(resp));
}

WebDav::WebDav(ApiContext* ctx, WebDavOptions options, std::function<int64_t()> clock)
    : impl_(std::make_unique<Impl>(ctx, options, std::move(clock))) {}
WebDav::~WebDav() = default;
Dispatch WebDav::Begin(const HttpRequestHead& head, std::string_view path, const Principal& who) {
  return impl_->Begin(head, path, who);
}

}  // namespace shardfs::api
