// The companion API's TLS certificate: a self-signed certificate and key, made on first start
// and kept in the drive's data folder, and the SHA-256 fingerprint a phone pins. OpenSSL's
// one home with Beast is net/ (STYLE.md).
//
// Thread safety: pure functions, and files written atomically.

#ifndef SHARDFS_NET_TLS_CERT_H_
#define SHARDFS_NET_TLS_CERT_H_

#include <string>
#include <vector>

#include "base/status.h"
#include "net/http_server.h"

namespace shardfs::net {

// A new self-signed certificate (ECDSA P-256, SHA-256, valid for ten years from a day ago)
// for `common_name`, naming each of `names` (host names or IP addresses) as a subject
// alternative name. InvalidArgument for an empty common name; IOError if OpenSSL fails.
Result<TlsCredentials> MakeSelfSignedCertificate(const std::string& common_name,
                                                 const std::vector<std::string>& names);

// The SHA-256 of the first certificate in `cert_pem` (its DER bytes), as upper-case hex pairs
// joined by ':' (as browsers and `openssl x509 -fingerprint -sha256` show it).
// InvalidArgument if `cert_pem` holds no certificate.
Result<std::string> CertificateFingerprint(const std::string& cert_pem);

// The credentials in `dir`/tls-cert.pem and `dir`/tls-key.pem; if neither file exists, makes
// them (MakeSelfSignedCertificate; the key file mode 0600) and says so in *created.
// InvalidArgument if the files do not hold a matching certificate and key; IOError from the
// disk.
Result<TlsCredentials> LoadOrCreateCertificate(const std::string& dir,
                                               const std::string& common_name,
                                               const std::vector<std::string>& names,
                                               bool* created);

}  // namespace shardfs::net

#endif  // SHARDFS_NET_TLS_CERT_H_
