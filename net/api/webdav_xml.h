// What WebDAV requests carry (RFC 4918): request bodies of PROPFIND, PROPPATCH and LOCK
// parsed into plain structs, with namespaces resolved, and If headers; and the pieces of
// multistatus answers written back. pugixml's one home (STYLE.md): it expands no external entities
// and reads no DTD, so a body can neither reach outside nor grow without bound (bodies are also
// capped in size before they are parsed).
//
// Thread safety: pure functions.

#ifndef SHARDFS_NET_API_WEBDAV_XML_H_
#define SHARDFS_NET_API_WEBDAV_XML_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace shardfs::api::dav {

inline constexpr std::string_view kDavNs = "DAV:";

// A property's name: its namespace URI ("" for none) and local name.
struct QName {
  std::string ns;
  std::string name;
  friend bool operator==(const QName&, const QName&) = default;
  friend auto operator<=>(const QName&, const QName&) = default;
};

struct PropfindRequest {
  enum class Kind { kAllProp, kPropName, kProp };
  Kind kind = Kind::kAllProp;  // an empty body is allprop
  std::vector<QName> props;    // kProp: the ones asked for
};

// One set or remove of a PROPPATCH, in document order.
struct PropPatchOp {
  bool remove = false;
  QName name;
  // For a set: the property element itself as XML, with every namespace it uses declared on
  // it, so it can be written back anywhere as it is ("dead" properties keep their value's
  // markup and namespaces).
  std::string xml;
};

struct LockRequest {
  bool exclusive = true;
  std::string owner_xml;  // the <D:owner> element as XML (namespaces declared), or ""
};

// InvalidArgument for a body that is not well-formed XML, or not a propfind/propertyupdate/
// lockinfo element in the DAV: namespace, or missing what it must hold.
Result<PropfindRequest> ParsePropfind(std::string_view body);
Result<std::vector<PropPatchOp>> ParsePropPatch(std::string_view body);
Result<LockRequest> ParseLockInfo(std::string_view body);

// One condition of an If header's list, and a list (RFC 4918 section 10.4): a state token
// (<opaquelocktoken:...>, <DAV:no-lock>) or an entity tag ([...]), perhaps negated (Not);
// a tagged list names the resource it is about.
struct IfCondition {
  bool negate = false;
  bool etag = false;  // [etag], else <state-token>
  std::string value;
};
struct IfList {
  std::optional<std::string> resource;
  std::vector<IfCondition> conditions;
};
// The lists of an If header. InvalidArgument for anything malformed (unbalanced brackets, an
// empty list, text outside a list or a tag).
Result<std::vector<IfList>> ParseIf(std::string_view header);

// Escapes &, <, >, " and ' for XML text and attribute values.
std::string XmlEscape(std::string_view s);

// <P:name xmlns:P="ns"/> (or <name xmlns=""/> for no namespace): an empty property element,
// self-contained.
std::string EmptyPropertyXml(const QName& q);

}  // namespace shardfs::api::dav

#endif  // SHARDFS_NET_API_WEBDAV_XML_H_
