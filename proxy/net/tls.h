// OpenSSL contexts for both sides: the client-facing server (ALPN h2 and
// http/1.1) and upstream connections to kube-apiserver (CA verification,
// client certificate, tls-server-name).
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/kubeconfig.h"

namespace kcp::proxy {

struct SslCtxDeleter {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;

class TlsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Takes every queued OpenSSL error off this thread's queue, as one line.
std::string drainOpensslErrors();

// Server context for the client-facing listener. Throws TlsError.
// With `client_ca_file`, clients may present a certificate (as with
// kube-apiserver, none is required); one that does not verify fails the handshake.
SslCtxPtr makeServerContext(const std::string& cert_file, const std::string& key_file,
                            const std::string& client_ca_file = "");

// The identity of a verified client certificate on `ssl`: user = subject CN,
// groups = subject O values; nothing when there is none.
void clientCertificateIdentity(SSL* ssl, std::string& user, std::vector<std::string>& groups);

// Client context for upstream connections. With `with_client_identity` it
// presents the kubeconfig's client certificate; requests that carry the
// client's own credentials use a context without it, because kube-apiserver
// authenticates a client certificate before a bearer token. Throws TlsError.
SslCtxPtr makeUpstreamContext(const config::UpstreamConfig& upstream, bool with_client_identity);

// Per-connection settings: SNI (for names, not IPs), the name or IP the
// server certificate must match, and the ALPN protocols to offer.
bool prepareUpstreamSsl(SSL* ssl, const std::string& host, const std::string& tls_server_name,
                        bool verify, const std::vector<std::string>& alpn);

// Paths of the generated serving certificate, its key and the CA that signed it.
struct ServingCert {
  std::string cert_file;
  std::string key_file;
  std::string ca_file;
};

// Creates (once) a CA and a serving certificate for `hosts` (DNS names or IP
// addresses) under `dir`, and reuses them on later starts if they still cover
// the hosts. Throws TlsError.
ServingCert ensureServingCert(const std::string& dir, const std::vector<std::string>& hosts);

}  // namespace kcp::proxy
