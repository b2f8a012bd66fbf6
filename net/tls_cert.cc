#include "net/tls_cert.h"

#include <memory>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include "base/file.h"

namespace shardfs::net {

namespace {

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using Pkey = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using Ext = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION, X509_EXTENSION_free>>;

// OpenSSL's last error as a Status (its error queue cleared).
Status OpensslError(const std::string& what) {
  unsigned long e = ERR_get_error();
  char buf[256] = "unknown error";
  if (e != 0) ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  return Status::IOError(what + ": " + buf);
}

std::string BioString(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, n > 0 ? static_cast<size_t>(n) : 0);
}

Result<Cert> ReadCertificate(const std::string& pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return OpensslError("read certificate");
  Cert cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    ERR_clear_error();
    return Status::InvalidArgument("no PEM certificate");
  }
  return cert;
}

bool IsIpAddress(const std::string& name) {
  return name.find_first_not_of("0123456789.") == std::string::npos ||
         name.find(':') != std::string::npos;
}

}  // namespace

Result<TlsCredentials> MakeSelfSignedCertificate(const std::string& common_name,
                                                 const std::vector<std::string>& names) {
  if (common_name.empty()) return Status::InvalidArgument("certificate without a name");
  Pkey key(EVP_EC_gen("P-256"));
  if (!key) return OpensslError("make a P-256 key");
  Cert cert(X509_new());
  if (!cert) return OpensslError("make a certificate");
  X509_set_version(cert.get(), 2);  // v3, for the extensions
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof(serial)) != 1) return OpensslError("serial number");
  serial[0] &= 0x7f;  // a positive number
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  if (bn == nullptr || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get())) == nullptr) {
    BN_free(bn);
    return OpensslError("serial number");
  }
  BN_free(bn);
  // From a day ago, so a phone whose clock is a little behind still accepts it.
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -24L * 3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 10L * 365 * 24 * 3600);
  X509_NAME* subject = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("shardfs"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  X509_set_issuer_name(cert.get(), subject);
  if (X509_set_pubkey(cert.get(), key.get()) != 1) return OpensslError("certificate key");
  std::string san;
  for (const std::string& n : names) {
    if (n.empty()) continue;
    if (!san.empty()) san += ",";
    san += (IsIpAddress(n) ? "IP:" : "DNS:") + n;
  }
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  std::vector<std::pair<int, std::string>> exts = {
      {NID_basic_constraints, "critical,CA:FALSE"},
      {NID_key_usage, "critical,digitalSignature,keyEncipherment"},
      {NID_ext_key_usage, "serverAuth"},
  };
  if (!san.empty()) exts.emplace_back(NID_subject_alt_name, san);
  for (const auto& [nid, value] : exts) {
    Ext ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
    if (!ext) return OpensslError("certificate extension " + value);
    if (X509_add_ext(cert.get(), ext.get(), -1) != 1) return OpensslError("add extension");
  }
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) return OpensslError("sign");
  Bio cert_bio(BIO_new(BIO_s_mem()));
  Bio key_bio(BIO_new(BIO_s_mem()));
  if (!cert_bio || !key_bio || PEM_write_bio_X509(cert_bio.get(), cert.get()) != 1 ||
      PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) !=
          1) {
    return OpensslError("write PEM");
  }
  return TlsCredentials{BioString(cert_bio.get()), BioString(key_bio.get())};
}

Result<std::string> CertificateFingerprint(const std::string& cert_pem) {
  SFS_ASSIGN_OR_RETURN(Cert cert, ReadCertificate(cert_pem));
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (X509_digest(cert.get(), EVP_sha256(), md, &n) != 1) return OpensslError("fingerprint");
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned int i = 0; i < n; ++i) {
    if (i > 0) out.push_back(':');
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 15]);
  }
  return out;
}

Result<TlsCredentials> LoadOrCreateCertificate(const std::string& dir,
                                               const std::string& common_name,
                                               const std::vector<std::string>& names,
                                               bool* created) {
  const std::string cert_path = dir + "/tls-cert.pem";
  const std::string key_path = dir + "/tls-key.pem";
  *created = false;
  struct stat st;
  bool have_cert = ::stat(cert_path.c_str(), &st) == 0;
  bool have_key = ::stat(key_path.c_str(), &st) == 0;
  if (!have_cert && !have_key) {
    SFS_ASSIGN_OR_RETURN(TlsCredentials made, MakeSelfSignedCertificate(common_name, names));
    // The key first: a crash between the two leaves a key without a certificate, which the
    // next start reports rather than pairs with a certificate it does not match.
    SFS_RETURN_IF_ERROR(WriteFileAtomic(key_path, AsBytes(made.key_pem), 0600));
    SFS_RETURN_IF_ERROR(WriteFileAtomic(cert_path, AsBytes(made.cert_pem), 0644));
    *created = true;
    return made;
  }
  constexpr size_t kMaxPem = 1 << 20;
  SFS_ASSIGN_OR_RETURN(Bytes cert_bytes, ReadFile(cert_path, kMaxPem));
  SFS_ASSIGN_OR_RETURN(Bytes key_bytes, ReadFile(key_path, kMaxPem));
  TlsCredentials out{std::string(cert_bytes.begin(), cert_bytes.end()),
                     std::string(key_bytes.begin(), key_bytes.end())};
  SFS_ASSIGN_OR_RETURN(Cert cert, ReadCertificate(out.cert_pem));
  Bio key_bio(BIO_new_mem_buf(out.key_pem.data(), static_cast<int>(out.key_pem.size())));
  Pkey key(key_bio ? PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key) {
    ERR_clear_error();
    return Status::InvalidArgument(key_path + " holds no PEM private key");
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return Status::InvalidArgument(cert_path + " does not match the key in " + key_path);
  }
  return out;
}

}  // namespace shardfs::net
