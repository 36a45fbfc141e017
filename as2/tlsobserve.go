package as2

import (
	"context"
	"crypto/tls"
	"sync/atomic"
)

// certRequestKey carries a *certRequest in a request's context, for the TLS handshake.
type certRequestKey struct{}

// certRequest records what happened to a server's request for a client certificate.
type certRequest struct {
	asked   atomic.Bool // the server sent a CertificateRequest
	offered atomic.Bool // and we answered with a certificate
}

// ObserveClientCertificateRequests returns a copy of cfg that lets Send tell when a server
// asked for a client certificate that we could not give. Under TLS 1.3 the server checks
// the client certificate after the client has finished its handshake, so the refusal
// reaches the client while it writes the request, as a broken pipe or a reset that looks
// like a network fault; with this the failure is reported as what it is
// (TransportError.ClientCertificateMissing). The certificate chosen is the one cfg would
// choose: the first of cfg.Certificates the server accepts, or cfg.GetClientCertificate's.
func ObserveClientCertificateRequests(cfg *tls.Config) *tls.Config {
	c := cfg.Clone()
	if c == nil {
		c = &tls.Config{}
	}
	choose := c.GetClientCertificate
	certs := c.Certificates
	c.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		var cert *tls.Certificate
		if choose != nil {
			var err error
			if cert, err = choose(cri); err != nil {
				return nil, err
			}
		} else {
			for i := range certs {
				if cri.SupportsCertificate(&certs[i]) == nil {
					cert = &certs[i]
					break
				}
			}
		}
		if cert == nil {
			cert = &tls.Certificate{} // send none, as crypto/tls does by default
		}
		if r, ok := cri.Context().Value(certRequestKey{}).(*certRequest); ok {
			r.asked.Store(true)
			r.offered.Store(len(cert.Certificate) > 0)
		}
		return cert, nil
	}
	return c
}

// withCertRequest returns ctx carrying a new certRequest.
func withCertRequest(ctx context.Context) (context.Context, *certRequest) {
	r := &certRequest{}
	return context.WithValue(ctx, certRequestKey{}, r), r
}

// missing reports whether the server asked for a client certificate we did not give.
func (r *certRequest) missing() bool { return r.asked.Load() && !r.offered.Load() }
