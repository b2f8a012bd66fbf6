// A file of the drive as an HTTP response (REST and WebDAV GET and HEAD): ETag and
// Last-Modified, If-None-Match (304), one Range (206; 416 past the end), If-Range, and the
// bytes read from the drive piece by piece as the server sends them.
//
// Thread safety: as the Drive's.

#ifndef SHARDFS_NET_API_DOWNLOAD_H_
#define SHARDFS_NET_API_DOWNLOAD_H_

#include "backend/drive.h"
#include "net/http_types.h"

namespace shardfs::api {

// The response to GET (or HEAD, by head.method) of file `a`. REQUIRES: `a` is a file and
// `drive` outlives the response.
net::HttpResponse FileResponse(backend::Drive& drive, const backend::InodeAttr& a,
                               const net::HttpRequestHead& head);

}  // namespace shardfs::api

#endif  // SHARDFS_NET_API_DOWNLOAD_H_
