#include "net/api/webdav_xml.h"

#include <cstring>
#include <map>
#include <sstream>

#include <pugixml.hpp>

namespace shardfs::api::dav {

namespace {

// Local name and prefix of an element name "p:name".
std::pair<std::string_view, std::string_view> SplitName(const char* qualified) {
  std::string_view q(qualified);
  size_t colon = q.find(':');
  if (colon == std::string_view::npos) return {"", q};
  return {q.substr(0, colon), q.substr(colon + 1)};
}

// The namespace bound to `prefix` where `node` is ("" prefix: the default namespace).
// InvalidArgument for a prefix bound nowhere.
Result<std::string> NamespaceOf(pugi::xml_node node, std::string_view prefix) {
  std::string attr = prefix.empty() ? "xmlns" : "xmlns:" + std::string(prefix);
  for (pugi::xml_node n = node; n && n.type() == pugi::node_element; n = n.parent()) {
    if (pugi::xml_attribute a = n.attribute(attr.c_str())) {
      // Only the default namespace may be undeclared so; a prefix bound to "" is not XML
      // (Namespaces in XML 1.0, section 3).
      if (!prefix.empty() && a.value()[0] == '\0') {
        return Status::InvalidArgument("XML prefix '" + std::string(prefix) +
                                       "' bound to no namespace");
      }
      return std::string(a.value());
    }
  }
  if (prefix.empty()) return std::string();
  if (prefix == "xml") return std::string("http://www.w3.org/XML/1998/namespace");
  return Status::InvalidArgument("XML prefix '" + std::string(prefix) + "' is not declared");
}

Result<QName> NameOf(pugi::xml_node node) {
  auto [prefix, local] = SplitName(node.name());
  if (local.empty()) return Status::InvalidArgument("an XML element without a name");
  SFS_ASSIGN_OR_RETURN(std::string ns, NamespaceOf(node, prefix));
  return QName{std::move(ns), std::string(local)};
}

bool IsDav(const QName& q, std::string_view name) { return q.ns == kDavNs && q.name == name; }

// Every element below `node` must have its prefixes declared (namespace well-formedness).
Status CheckPrefixes(pugi::xml_node node) {
  for (pugi::xml_node c = node.first_child(); c; c = c.next_sibling()) {
    if (c.type() != pugi::node_element) continue;
    SFS_RETURN_IF_ERROR(NameOf(c).status());
    SFS_RETURN_IF_ERROR(CheckPrefixes(c));
  }
  return Status::Ok();
}

Result<pugi::xml_node> RootElement(pugi::xml_document& doc, std::string_view body,
                                   std::string_view want) {
  pugi::xml_parse_result parsed =
      doc.load_buffer(body.data(), body.size(), pugi::parse_default, pugi::encoding_utf8);
  if (!parsed) {
    return Status::InvalidArgument(std::string("the body is not well-formed XML: ") +
                                   parsed.description());
  }
  pugi::xml_node root = doc.document_element();
  if (!root) return Status::InvalidArgument("the body has no XML element");
  SFS_ASSIGN_OR_RETURN(QName q, NameOf(root));
  if (!IsDav(q, want)) {
    return Status::InvalidArgument("the body's element is not DAV:" + std::string(want));
  }
  SFS_RETURN_IF_ERROR(CheckPrefixes(root));
  return root;
}

// The element as XML that stands on its own: the namespace declarations in scope where it was
// are put on it.
std::string SelfContained(pugi::xml_node element) {
  pugi::xml_document out;
  pugi::xml_node copy = out.append_copy(element);
  std::map<std::string, std::string> inherited;
  for (pugi::xml_node n = element.parent(); n && n.type() == pugi::node_element; n = n.parent()) {
    for (pugi::xml_attribute a : n.attributes()) {
      std::string_view name(a.name());
      if (name != "xmlns" && name.rfind("xmlns:", 0) != 0) continue;
      if (copy.attribute(a.name()) || inherited.count(std::string(name))) continue;
      inherited.emplace(std::string(name), a.value());
    }
  }
  for (const auto& [name, value] : inherited) copy.append_attribute(name.c_str()) = value.c_str();
  std::ostringstream os;
  out.save(os, "", pugi::format_raw | pugi::format_no_declaration, pugi::encoding_utf8);
  return os.str();
}

// The element children of `node`.
std::vector<pugi::xml_node> Elements(pugi::xml_node node) {
  std::vector<pugi::xml_node> out;
  for (pugi::xml_node c = node.first_child(); c; c = c.next_sibling()) {
    if (c.type() == pugi::node_element) out.push_back(c);
  }
  return out;
}

}  // namespace

Result<PropfindRequest> ParsePropfind(std::string_view body) {
  PropfindRequest req;
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return req;  // allprop
  pugi::xml_document doc;
  SFS_ASSIGN_OR_RETURN(pugi::xml_node root, RootElement(doc, body, "propfind"));
  bool seen = false;
  for (pugi::xml_node c : Elements(root)) {
    SFS_ASSIGN_OR_RETURN(QName q, NameOf(c));
    if (IsDav(q, "allprop")) {
      req.kind = PropfindRequest::Kind::kAllProp;
      seen = true;
    } else if (IsDav(q, "propname")) {
      req.kind = PropfindRequest::Kind::kPropName;
      seen = true;
    } else if (IsDav(q, "prop")) {
      req.kind = PropfindRequest::Kind::kProp;
      seen = true;
      for (pugi::xml_node p : Elements(c)) {
        SFS_ASSIGN_OR_RETURN(QName name, NameOf(p));
        req.props.push_back(std::move(name));
      }
    }
    // DAV:include (with allprop) and unknown elements are ignored, as RFC 4918 asks.
  }
  if (!seen) return Status::InvalidArgument("a propfind names allprop, propname or prop");
  return req;
}

Result<std::vector<PropPatchOp>> ParsePropPatch(std::string_view body) {
  pugi::xml_document doc;
  SFS_ASSIGN_OR_RETURN(pugi::xml_node root, RootElement(doc, body, "propertyupdate"));
  std::vector<PropPatchOp> ops;
  for (pugi::xml_node c : Elements(root)) {
    SFS_ASSIGN_OR_RETURN(QName q, NameOf(c));
    bool remove = IsDav(q, "remove");
    if (!remove && !IsDav(q, "set")) continue;
    for (pugi::xml_node prop : Elements(c)) {
      SFS_ASSIGN_OR_RETURN(QName pq, NameOf(prop));
      if (!IsDav(pq, "prop")) continue;
      for (pugi::xml_node p : Elements(prop)) {
        PropPatchOp op;
        op.remove = remove;
        SFS_ASSIGN_OR_RETURN(op.name, NameOf(p));
        if (!remove) op.xml = SelfContained(p);
        ops.push_back(std::move(op));
      }
    }
  }
  if (ops.empty()) return Status::InvalidArgument("a propertyupdate sets or removes nothing");
  return ops;
}

Result<LockRequest> ParseLockInfo(std::string_view body) {
  pugi::xml_document doc;
  SFS_ASSIGN_OR_RETURN(pugi::xml_node root, RootElement(doc, body, "lockinfo"));
  LockRequest req;
  bool scope = false, type = false;
  for (pugi::xml_node c : Elements(root)) {
    SFS_ASSIGN_OR_RETURN(QName q, NameOf(c));
    if (IsDav(q, "lockscope")) {
      for (pugi::xml_node s : Elements(c)) {
        SFS_ASSIGN_OR_RETURN(QName sq, NameOf(s));
        if (IsDav(sq, "exclusive")) {
          req.exclusive = true;
          scope = true;
        } else if (IsDav(sq, "shared")) {
          req.exclusive = false;
          scope = true;
        }
      }
    } else if (IsDav(q, "locktype")) {
      for (pugi::xml_node t : Elements(c)) {
        SFS_ASSIGN_OR_RETURN(QName tq, NameOf(t));
        if (IsDav(tq, "write")) type = true;
      }
    } else if (IsDav(q, "owner")) {
      req.owner_xml = SelfContained(c);
    }
  }
  if (!scope || !type) {
    return Status::InvalidArgument("a lockinfo needs a lockscope and a write locktype");
  }
  return req;
}

Result<std::vector<IfList>> ParseIf(std::string_view h) {
  std::vector<IfList> lists;
  std::optional<std::string> resource;
  size_t i = 0;
  auto skip = [&] {
    while (i < h.size() && (h[i] == ' ' || h[i] == '\t')) ++i;
  };
  auto bad = [] { return Status::InvalidArgument("malformed If header"); };
  while (true) {
    skip();
    if (i == h.size()) break;
    if (h[i] == '<') {
      size_t end = h.find('>', i);
      if (end == std::string_view::npos) return bad();
      resource = std::string(h.substr(i + 1, end - i - 1));
      i = end + 1;
      continue;
    }
    if (h[i] != '(') return bad();
    ++i;
    IfList list;
    list.resource = resource;
    while (true) {
      skip();
      if (i == h.size()) return bad();
      if (h[i] == ')') {
        ++i;
        break;
      }
      IfCondition c;
      if (h.substr(i, 3) == "Not") {
        c.negate = true;
        i += 3;
        skip();
      }
      if (i == h.size()) return bad();
      char open = h[i];
      char close = open == '<' ? '>' : open == '[' ? ']' : 0;
      if (close == 0) return bad();
      size_t end = h.find(close, i + 1);
      if (end == std::string_view::npos) return bad();
      c.etag = open == '[';
      c.value = std::string(h.substr(i + 1, end - i - 1));
      i = end + 1;
      list.conditions.push_back(std::move(c));
    }
    if (list.conditions.empty()) return bad();
    lists.push_back(std::move(list));
  }
  if (lists.empty()) return bad();
  return lists;
}

std::string XmlEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::string EmptyPropertyXml(const QName& q) {
  if (q.ns.empty()) return "<" + q.name + " xmlns=\"\"/>";
  return "<P:" + q.name + " xmlns:P=\"" + XmlEscape(q.ns) + "\"/>";
}

}  // namespace shardfs::api::dav
