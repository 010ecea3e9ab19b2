package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pki is the cluster's certificate authority and the files kube-apiserver
// needs. Everything is generated once per cluster directory and reused on restart.
type pki struct {
	dir    string
	caCert *x509.Certificate
	caKey  crypto.Signer
}

func (p *pki) path(name string) string { return filepath.Join(p.dir, name) }

// loadOrCreatePKI creates DIR/pki on first use: a CA, the apiserver's serving
// certificate, the admin client certificate, the service-account key pair
// and the static token file.
func loadOrCreatePKI(dir string) (*pki, error) {
	p := &pki{dir: filepath.Join(dir, "pki")}
	if _, err := os.Stat(p.path("ca.crt")); err == nil {
		if err := p.loadCA(); err != nil {
			return nil, err
		}
		return p, p.issueClientCerts()
	}
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "kcluster-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	if err := writeCertKey(p.path("ca"), der, key); err != nil {
		return nil, err
	}
	if err := p.loadCA(); err != nil {
		return nil, err
	}
	if err := p.issue("apiserver", "kube-apiserver", nil, true); err != nil {
		return nil, err
	}
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	saPub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, err
	}
	if err := writePEM(p.path("sa.key"), "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(saKey)); err != nil {
		return nil, err
	}
	if err := writePEM(p.path("sa.pub"), "PUBLIC KEY", saPub); err != nil {
		return nil, err
	}
	// Static bearer tokens for the two unprivileged users (token,user,uid).
	tokens := ""
	for _, u := range tokenUsers {
		tokens += fmt.Sprintf("%s,%s,%s\n", randomToken(), u, u)
	}
	if err := os.WriteFile(p.path("tokens.csv"), []byte(tokens), 0o600); err != nil {
		return nil, err
	}
	return p, p.issueClientCerts()
}

// certUsers authenticate with client certificates (NAME.crt, user = CN,
// groups = O): the admin; a kubelet's identity, which the Node authorizer
// judges; a gateway that impersonates users with its certificate; a proxy;
// kube-controller-manager and kube-scheduler.
var certUsers = []struct {
	name, cn string
	groups   []string
}{
	{"admin", "kcluster-admin", []string{"system:masters"}},
	{"node-1", "system:node:kcp-node-1", []string{"system:nodes"}},
	{"cert-gateway", "cert-gateway", []string{"kcp:gateways"}},
	{"proxy", "kube-cache-proxy", nil}, // a proxy's own identity, with the README's ClusterRole
	// The control plane's (kcluster controlplane), bound by kube-apiserver's own RBAC bootstrap.
	{"controller-manager", "system:kube-controller-manager", nil},
	{"scheduler", "system:kube-scheduler", nil},
}

// issueClientCerts issues the client certificates a PKI does not have yet
// (a cluster directory from before a user was added keeps working).
func (p *pki) issueClientCerts() error {
	for _, u := range certUsers {
		if _, err := os.Stat(p.path(u.name + ".crt")); err == nil {
			continue
		}
		if err := p.issue(u.name, u.cn, u.groups, false); err != nil {
			return err
		}
	}
	return nil
}

// tokenUsers authenticate with bearer tokens from pki/tokens.csv.
var tokenUsers = []string{"team-a-reader", "no-access"}

func (p *pki) loadCA() error {
	certPEM, err := os.ReadFile(p.path("ca.crt"))
	if err != nil {
		return err
	}
	keyPEM, err := os.ReadFile(p.path("ca.key"))
	if err != nil {
		return err
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return fmt.Errorf("bad PEM in %s", p.dir)
	}
	if p.caCert, err = x509.ParseCertificate(cb.Bytes); err != nil {
		return err
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	p.caKey = key
	return err
}

// issue writes NAME.crt/NAME.key signed by the CA: a serving certificate for
// loopback names, or a client certificate (user = CN, groups = O).
func (p *pki) issue(name, cn string, groups []string, serving bool) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn, Organization: groups},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(5 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if serving {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local"}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1"), net.ParseIP("10.96.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		return err
	}
	return writeCertKey(p.path(name), der, key)
}

func writeCertKey(base string, der []byte, key *ecdsa.PrivateKey) error {
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := writePEM(base+".crt", "CERTIFICATE", der); err != nil {
		return err
	}
	return writePEM(base+".key", "EC PRIVATE KEY", kb)
}

func writePEM(path, kind string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	return n
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
