#include "net/http_parse.h"

#include <utility>

#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>

namespace shardfs::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

void PrepareRequestParser(RequestParser& parser, uint32_t max_header_bytes) {
  parser.header_limit(max_header_bytes);
  parser.body_limit(boost::none);
}

ParsedHead ToRequestHead(const RequestParser& parser, std::string peer_address) {
  const auto& req = parser.get();
  ParsedHead out;
  HttpRequestHead& head = out.head;
  head.method = std::string(req.method_string());
  head.target = std::string(req.target());
  for (const auto& f : req) {
    head.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  }
  if (auto len = parser.content_length()) head.content_length = *len;
  head.chunked = parser.chunked();
  head.peer_address = std::move(peer_address);
  out.keep_alive = req.keep_alive() && req.version() == 11;
  if (req.version() != 11 && req.version() != 10) {
    out.error = ServerError(505, "http_version", "only HTTP/1.0 and HTTP/1.1 are served");
  }
  return out;
}

std::optional<HttpResponse> HeadReadError(const beast::error_code& ec) {
  if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
      ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
      ec == asio::error::eof) {
    return std::nullopt;
  }
  if (ec == http::error::header_limit) {
    return ServerError(431, "header_too_large", "request head is too large");
  }
  return ServerError(400, "bad_http", "malformed HTTP request: " + ec.message());
}

std::optional<HttpResponse> BodyReadError(const beast::error_code& ec) {
  if (ec == http::error::body_limit) {
    return ServerError(413, "too_large", "request body is over the limit");
  }
  if (ec == asio::error::eof || ec == http::error::partial_message || ec == beast::error::timeout ||
      ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
    return std::nullopt;
  }
  return ServerError(400, "bad_http", "malformed request body: " + ec.message());
}

HttpResponse ServerError(unsigned status, std::string_view code, std::string_view message) {
  HttpResponse r;
  r.status = status;
  r.headers.emplace_back("Content-Type", "application/json");
  // Written by hand: the server serves any handler, not only the node's (whose ErrorResponse
  // this matches), and its codes and messages are ASCII text from here and from Beast.
  r.body = std::string("{\"code\":\"") + std::string(code) + "\",\"message\":\"";
  for (char c : message) {
    if (c == '"' || c == '\\') r.body.push_back('\\');
    r.body.push_back(static_cast<unsigned char>(c) < 0x20 ? ' ' : c);
  }
  r.body += "\"}\n";
  r.close = true;
  return r;
}

}  // namespace shardfs::net
