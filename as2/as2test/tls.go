package as2test

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http/httptest"
	"testing"

	"github.com/as2gate/as2gate/cms/cmstest"
)

// tlsConfig collects the TLS options; any of them turns TLS on.
type tlsConfig struct {
	hosts                  []string // DNS names of the server certificate; nil: localhost and 127.0.0.1
	clientCAs              *x509.CertPool
	minVersion, maxVersion uint16
}

func (c *config) tlsOptions() *tlsConfig {
	if c.tls == nil {
		c.tls = &tlsConfig{}
	}
	return c.tls
}

// WithTLS makes the partner speak HTTPS with a fresh self-signed certificate for localhost
// and 127.0.0.1. Clients with the system's roots reject it (x509.UnknownAuthorityError);
// Partner.Client and Partner.CertPool trust it, as a sender that pins the partner's
// certificate does.
func WithTLS() Option {
	return func(c *config) { c.tlsOptions() }
}

// WithTLSFor makes the partner speak HTTPS with a self-signed certificate for the given
// DNS names only. Dialled at 127.0.0.1 by a client that trusts the certificate, the
// handshake fails with an x509.HostnameError, as when a partner's URL names another host
// than its certificate.
func WithTLSFor(hostnames ...string) Option {
	return func(c *config) {
		t := c.tlsOptions()
		t.hosts = append([]string{}, hostnames...) // non-nil even when empty: no names at all
	}
}

// WithClientCertRequired makes the partner speak HTTPS and demand a client certificate
// that chains to pool (tls.RequireAndVerifyClientCert). A client without one fails: in
// TLS 1.3 the handshake completes on the client's side and the refusal arrives as a
// certificate_required alert on the first read, in TLS 1.2 during the handshake.
func WithClientCertRequired(pool *x509.CertPool) Option {
	return func(c *config) { c.tlsOptions().clientCAs = pool }
}

// WithTLSVersion makes the partner speak HTTPS accepting only the protocol versions from
// minVersion to maxVersion (tls.VersionTLS12, ...; 0 leaves that end at crypto/tls's default). A client
// whose versions do not overlap receives a protocol_version alert.
func WithTLSVersion(minVersion, maxVersion uint16) Option {
	return func(c *config) {
		t := c.tlsOptions()
		t.minVersion, t.maxVersion = minVersion, maxVersion
	}
}

// apply gives srv its TLS configuration and returns the server certificate.
func (t *tlsConfig) apply(tb testing.TB, srv *httptest.Server) *x509.Certificate {
	tb.Helper()
	opts := &cmstest.Options{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if t.hosts == nil {
		opts.DNSNames = []string{"localhost"}
		opts.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	} else {
		opts.DNSNames = t.hosts
	}
	id := cmstest.New(tb, "as2test partner", opts)
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{{
			Certificate: [][]byte{id.Certificate.Raw},
			PrivateKey:  id.Key,
			Leaf:        id.Certificate,
		}},
		MinVersion: t.minVersion,
		MaxVersion: t.maxVersion,
	}
	if t.clientCAs != nil {
		srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
		srv.TLS.ClientCAs = t.clientCAs
	}
	return id.Certificate
}

// ClientCert is a throwaway TLS client identity for a station, for partners made with
// WithClientCertRequired.
type ClientCert struct {
	Identity    *cmstest.Identity // key and self-signed certificate
	Certificate tls.Certificate   // the same, ready for tls.Config.Certificates
}

// NewClientCert makes a self-signed TLS client certificate with common name name.
func NewClientCert(tb testing.TB, name string) *ClientCert {
	tb.Helper()
	id := cmstest.New(tb, name, &cmstest.Options{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	return &ClientCert{
		Identity: id,
		Certificate: tls.Certificate{
			Certificate: [][]byte{id.Certificate.Raw},
			PrivateKey:  id.Key,
			Leaf:        id.Certificate,
		},
	}
}

// Pool returns a pool holding the client certificate, to pass to WithClientCertRequired.
func (c *ClientCert) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(c.Identity.Certificate)
	return pool
}
