package lab

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/regclient/regclient/types/ref"
)

// TestTLS checks each TLS profile stages exactly its own fault: a client
// that trusts the lab CA gets through to tls, and meets expiry or a wrong
// host name on the others; a client without the CA meets an unknown
// authority.
func TestTLS(t *testing.T) {
	t.Parallel()
	l := sharedLab(t)
	tests := []struct {
		name    string
		trustCA bool
		check   func(err error) bool
		want    string
	}{
		{name: "tls", trustCA: true, check: func(err error) bool { return err == nil }, want: "success"},
		{name: "tls", check: func(err error) bool {
			var e x509.UnknownAuthorityError
			return errors.As(err, &e)
		}, want: "x509.UnknownAuthorityError"},
		{name: "tls-expired", trustCA: true, check: func(err error) bool {
			var e x509.CertificateInvalidError
			return errors.As(err, &e) && e.Reason == x509.Expired
		}, want: "x509.CertificateInvalidError (Expired)"},
		{name: "tls-wrong-host", trustCA: true, check: func(err error) bool {
			var e x509.HostnameError
			return errors.As(err, &e) && e.Certificate.DNSNames[0] == WrongHostName
		}, want: "x509.HostnameError for " + WrongHostName},
	}
	for _, tc := range tests {
		t.Run(tc.name+"/"+tc.want, func(t *testing.T) {
			t.Parallel()
			r := mustGet(t, l, tc.name)
			hc := httpClientFor(t, r, false)
			if !tc.trustCA {
				hc.Transport.(*http.Transport).TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			}
			_, err := tryGet(t.Context(), hc, r, "/v2/", false)
			if !tc.check(err) {
				t.Errorf("error %v, want %s", err, tc.want)
			}
		})
	}

	// refdoctor's own client, built from the lab config, sees the same.
	c := clientFor(t, l, false)
	for name, wantOK := range map[string]bool{"tls": true, "tls-expired": false, "tls-wrong-host": false} {
		r := mustGet(t, l, name)
		app, _ := ref.New(r.Host + "/demo/app:v1")
		_, err := c.ManifestHead(t.Context(), app)
		var verr *tls.CertificateVerificationError
		switch {
		case wantOK && err != nil:
			t.Errorf("%s via registry client: %v", name, err)
		case !wantOK && !errors.As(err, &verr):
			t.Errorf("%s via registry client: %v, want a certificate verification error", name, err)
		}
	}
}

// TestTLSCertificates checks the lab CA and leaves directly.
func TestTLSCertificates(t *testing.T) {
	t.Parallel()
	ca, err := newLabCA()
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	for _, p := range []Profile{ProfileTLS, ProfileTLSExpired, ProfileTLSWrongHost} {
		leaf, err := ca.leaf(p)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(leaf.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		if cert.PublicKeyAlgorithm != x509.ECDSA {
			t.Errorf("%s: key %s, want ECDSA", p, cert.PublicKeyAlgorithm)
		}
		_, verr := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "127.0.0.1", CurrentTime: time.Now()})
		if (verr == nil) != (p == ProfileTLS) {
			t.Errorf("%s: verify error %v", p, verr)
		}
	}
}
