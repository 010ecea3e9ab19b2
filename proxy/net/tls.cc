#include "proxy/net/tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

namespace kcp::proxy {
namespace {

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
using X509Ptr = std::unique_ptr<X509, X509Deleter>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

[[noreturn]] void fail(const std::string& what) {
  throw TlsError(what + ": " + drainOpensslErrors());
}

bool isIpAddress(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// ALPN: prefer h2, then http/1.1, whatever order the client lists them in.
int selectAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
               unsigned int inlen, void*) noexcept {
  for (const char* want : {"h2", "http/1.1"}) {
    const size_t n = std::strlen(want);
    for (unsigned int i = 0; i < inlen;) {
      const unsigned int len = in[i];
      if (i + 1 + len > inlen) break;
      if (len == n && std::memcmp(in + i + 1, want, n) == 0) {
        *out = in + i + 1;
        *outlen = static_cast<unsigned char>(len);
        return SSL_TLSEXT_ERR_OK;
      }
      i += 1 + len;
    }
  }
  return SSL_TLSEXT_ERR_NOACK;
}

void applyCommonOptions(SSL_CTX* ctx) {
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // RFC 9113 9.2.2: TLS 1.2 with HTTP/2 needs ephemeral key exchange and AEAD.
  if (SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20") != 1) fail("cipher list");
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
}

PkeyPtr newEcKey() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) fail("generate key");
  return key;
}

void addExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) fail("certificate extension " + value);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

X509Ptr newCert(EVP_PKEY* key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key,
                int days) {
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), long(days) * 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
  if (issuer == nullptr) {
    addExtension(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE");
    addExtension(cert.get(), cert.get(), NID_key_usage,
                 "critical,keyCertSign,cRLSign,digitalSignature");
  }
  (void)issuer_key;
  return cert;
}

void sign(X509* cert, EVP_PKEY* key) {
  if (X509_sign(cert, key, EVP_sha256()) == 0) fail("sign certificate");
}

void writePem(const std::string& path, const std::function<int(BIO*)>& write) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (write(bio.get()) != 1) fail("encode " + path);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(data, len);
    if (!out) throw TlsError("cannot write " + tmp);
  }
  std::filesystem::permissions(
      tmp, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  std::filesystem::rename(tmp, path);
}

X509Ptr readCert(const std::string& path) {
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) return nullptr;
  return X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

bool certCovers(X509* cert, const std::vector<std::string>& hosts) {
  if (X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0) return false;
  for (const auto& h : hosts) {
    const int ok = isIpAddress(h) ? X509_check_ip_asc(cert, h.c_str(), 0)
                                  : X509_check_host(cert, h.c_str(), h.size(), 0, nullptr);
    if (ok != 1) return false;
  }
  return true;
}

}  // namespace

std::string drainOpensslErrors() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "no OpenSSL error queued" : out;
}

SslCtxPtr makeServerContext(const std::string& cert_file, const std::string& key_file,
                            const std::string& client_ca_file) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) fail("SSL_CTX_new");
  applyCommonOptions(ctx.get());
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert_file.c_str()) != 1)
    fail("load " + cert_file);
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    fail("load " + key_file);
  if (SSL_CTX_check_private_key(ctx.get()) != 1) fail(key_file + " does not match " + cert_file);
  SSL_CTX_set_alpn_select_cb(ctx.get(), selectAlpn, nullptr);
  if (!client_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx.get(), client_ca_file.c_str(), nullptr) != 1)
      fail("load " + client_ca_file);
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(client_ca_file.c_str());
    if (names == nullptr) fail("read the CA names of " + client_ca_file);
    SSL_CTX_set_client_CA_list(ctx.get(), names);             // takes ownership
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);  // asked for, not required
  }
  return ctx;
}

void clientCertificateIdentity(SSL* ssl, std::string& user, std::vector<std::string>& groups) {
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return;
  const X509_NAME* subject = X509_get_subject_name(cert);
  const auto text = [](const X509_NAME_ENTRY* e) {
    const ASN1_STRING* data = X509_NAME_ENTRY_get_data(e);
    unsigned char* utf8 = nullptr;
    const int n = ASN1_STRING_to_UTF8(&utf8, data);
    std::string out =
        n >= 0 ? std::string(reinterpret_cast<char*>(utf8), size_t(n)) : std::string();
    OPENSSL_free(utf8);
    return out;
  };
  for (int i = -1; (i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) >= 0;) {
    user = text(
        X509_NAME_get_entry(subject, i));  // the last CN, if several (Go's pkix takes the last)
  }
  for (int i = -1; (i = X509_NAME_get_index_by_NID(subject, NID_organizationName, i)) >= 0;) {
    groups.push_back(text(X509_NAME_get_entry(subject, i)));
  }
  if (user.empty()) groups.clear();  // kube-apiserver refuses a certificate without a CN
}

SslCtxPtr makeUpstreamContext(const config::UpstreamConfig& upstream, bool with_client_identity) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) fail("SSL_CTX_new");
  applyCommonOptions(ctx.get());
  if (upstream.insecure_skip_tls_verify) {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  } else {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    if (upstream.ca_pem.empty()) {
      if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1) fail("system trust store");
    } else {
      BioPtr bio(BIO_new_mem_buf(upstream.ca_pem.data(), int(upstream.ca_pem.size())));
      X509_STORE* store = SSL_CTX_get_cert_store(ctx.get());
      int added = 0;
      while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
        X509_STORE_add_cert(store, cert);
        X509_free(cert);
        ++added;
      }
      ERR_clear_error();  // the loop ends on a "no start line" error
      if (added == 0) throw TlsError("upstream CA: no PEM certificate found");
    }
  }
  if (with_client_identity && !upstream.client_cert_pem.empty()) {
    BioPtr bio(
        BIO_new_mem_buf(upstream.client_cert_pem.data(), int(upstream.client_cert_pem.size())));
    X509Ptr leaf(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!leaf || SSL_CTX_use_certificate(ctx.get(), leaf.get()) != 1)
      fail("upstream client certificate");
    while (X509* extra = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
      SSL_CTX_add_extra_chain_cert(ctx.get(), extra);  // takes ownership
    }
    ERR_clear_error();
    BioPtr kbio(
        BIO_new_mem_buf(upstream.client_key_pem.data(), int(upstream.client_key_pem.size())));
    PkeyPtr key(PEM_read_bio_PrivateKey(kbio.get(), nullptr, nullptr, nullptr));
    if (!key || SSL_CTX_use_PrivateKey(ctx.get(), key.get()) != 1) fail("upstream client key");
    if (SSL_CTX_check_private_key(ctx.get()) != 1)
      fail("upstream client key does not match its certificate");
  }
  return ctx;
}

bool prepareUpstreamSsl(SSL* ssl, const std::string& host, const std::string& tls_server_name,
                        bool verify, const std::vector<std::string>& alpn) {
  const std::string& name = tls_server_name.empty() ? host : tls_server_name;
  if (!isIpAddress(name) && SSL_set_tlsext_host_name(ssl, name.c_str()) != 1) return false;
  if (verify) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    const int ok = isIpAddress(name)
                       ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())
                       : X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size());
    if (ok != 1) return false;
  }
  std::string wire;
  for (const auto& p : alpn) {
    wire += char(p.size());
    wire += p;
  }
  return SSL_set_alpn_protos(ssl, reinterpret_cast<const unsigned char*>(wire.data()),
                             unsigned(wire.size())) == 0;
}

ServingCert ensureServingCert(const std::string& dir, const std::vector<std::string>& hosts) {
  std::filesystem::create_directories(dir);
  ServingCert out{dir + "/serving.crt", dir + "/serving.key", dir + "/ca.crt"};
  if (X509Ptr existing = readCert(out.cert_file); existing && certCovers(existing.get(), hosts) &&
                                                  std::filesystem::exists(out.key_file) &&
                                                  std::filesystem::exists(out.ca_file)) {
    return out;
  }
  ERR_clear_error();
  PkeyPtr ca_key = newEcKey();
  X509Ptr ca = newCert(ca_key.get(), "kube-cache-proxy-ca", nullptr, nullptr, 3650);
  sign(ca.get(), ca_key.get());

  PkeyPtr key = newEcKey();
  X509Ptr cert = newCert(key.get(), "kube-cache-proxy", ca.get(), ca_key.get(), 365);
  std::string san;
  for (const auto& h : hosts) {
    if (!san.empty()) san += ",";
    san += (isIpAddress(h) ? "IP:" : "DNS:") + h;
  }
  addExtension(cert.get(), ca.get(), NID_subject_alt_name, san);
  addExtension(cert.get(), ca.get(), NID_key_usage, "critical,digitalSignature");
  addExtension(cert.get(), ca.get(), NID_ext_key_usage, "serverAuth");
  sign(cert.get(), ca_key.get());

  writePem(out.key_file, [&](BIO* b) {
    return PEM_write_bio_PrivateKey(b, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  });
  writePem(out.ca_file, [&](BIO* b) { return PEM_write_bio_X509(b, ca.get()); });
  writePem(out.cert_file, [&](BIO* b) { return PEM_write_bio_X509(b, cert.get()); });
  return out;
}

}  // namespace kcp::proxy
