// How the HTTP server reads a request: a Beast parser set up for a request head, the
// HttpRequestHead a handler sees once the head is parsed, and the server's own answers to
// a request it cannot pass on (malformed, head too large, HTTP version not served, body over
// the handler's limit). The server (net/http_server) and its fuzz target
// (tests/fuzz/fuzz_node_request.cc) share these, so the fuzzer parses requests exactly as the
// server does. Internal to net/: it includes Beast, whose one home is net/ (STYLE.md).
//
// Thread safety: pure functions.

#ifndef SHARDFS_NET_HTTP_PARSE_H_
#define SHARDFS_NET_HTTP_PARSE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>

#include "net/http_types.h"

namespace shardfs::net {

// Parses one request; its body goes, piece by piece, into a buffer the reader provides.
using RequestParser = boost::beast::http::request_parser<boost::beast::http::buffer_body>;

// Sets up a fresh parser to read a request head of at most `max_header_bytes` (request line
// and headers). No body limit while the head is read: the handler sets it once it has seen
// the head (parser.body_limit(dispatch.body_limit)), and a body it does not accept is never
// read.
void PrepareRequestParser(RequestParser& parser, uint32_t max_header_bytes);

// A request head the parser has read, as the handler sees it.
struct ParsedHead {
  HttpRequestHead head;
  // Whether the connection may carry another request after this one (HTTP/1.1 without
  // "Connection: close"); the response may still close it.
  bool keep_alive = false;
  // If set, the server sends this instead of calling the handler, and closes the connection
  // (505 for an HTTP version other than 1.0 and 1.1).
  std::optional<HttpResponse> error;
};

// REQUIRES: parser.is_header_done().
ParsedHead ToRequestHead(const RequestParser& parser, std::string peer_address);

// The server's answer to a failed read of a request head: nullopt if the connection just
// ends (the client closed it or went quiet before a request began), else the response sent
// before the connection closes (431 for a head over the limit, 400 for a malformed one).
std::optional<HttpResponse> HeadReadError(const boost::beast::error_code& ec);

// The same for a failed read of a request body (the handler's sink is dropped first):
// nullopt if the client went away or stalled mid-body, else 413 for a body over the
// handler's limit, 400 for a malformed one (e.g. a bad chunk).
// REQUIRES: ec is not http::error::need_buffer (a full body buffer, not an error).
std::optional<HttpResponse> BodyReadError(const boost::beast::error_code& ec);

// A response the server makes itself, not a handler's: JSON {"code": code, "message":
// message} as the handlers' errors, and the connection closes after it.
HttpResponse ServerError(unsigned status, std::string_view code, std::string_view message);

}  // namespace shardfs::net

#endif  // SHARDFS_NET_HTTP_PARSE_H_
