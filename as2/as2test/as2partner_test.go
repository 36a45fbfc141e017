package as2test_test

import (
	"bytes"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/as2gate/as2gate/as2"
	"github.com/as2gate/as2gate/as2/as2test"
	"github.com/as2gate/as2gate/cms"
	"github.com/as2gate/as2gate/cms/cmstest"
)

// TestPartnerAS2Answers checks how a partner made with AS2 frames its answer, with a stock
// http.Client, so that what the as2 client tests rely on is itself tested.
func TestPartnerAS2Answers(t *testing.T) {
	t.Parallel()
	station := cmstest.New(t, "station", nil)
	partner := cmstest.New(t, "partner", nil)
	cfg := as2test.AS2Config{
		ID: "PARTNER", Certificate: partner.Certificate, Key: partner.Key,
		Trusted: []*x509.Certificate{station.Certificate},
	}
	packed := func(t *testing.T, mdn as2.MDNRequest) (http.Header, []byte) {
		msg, err := as2.Pack([]as2.Payload{{ContentType: "text/plain", Body: strings.NewReader("hello")}}, &as2.PackOptions{
			From: "STATION", To: "PARTNER",
			Sign: as2.MICAlgSHA256, Certificate: station.Certificate, Key: station.Key,
			Encrypt: cms.AES128CBC, Recipients: []*x509.Certificate{partner.Certificate},
			MDN: mdn,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer msg.Close()
		b, err := io.ReadAll(msg.Body.Open())
		if err != nil {
			t.Fatal(err)
		}
		return msg.Header, b
	}
	signedSync := as2.MDNRequest{Mode: as2.MDNSync, Signed: true}
	tests := []struct {
		name    string
		edit    func(c *as2test.AS2Config)
		mdn     as2.MDNRequest
		drop    string // a request header to remove
		status  int
		chunked bool
		ctype   string // the media type of the answer
		readErr func(err error) bool
	}{
		{name: "signed MDN with Content-Length", mdn: signedSync, status: 200, ctype: "multipart/signed"},
		{name: "signed MDN chunked", edit: func(c *as2test.AS2Config) { c.Chunked = true }, mdn: signedSync, status: 200, chunked: true, ctype: "multipart/signed"},
		{name: "unsigned MDN", mdn: as2.MDNRequest{Mode: as2.MDNSync}, status: 200, ctype: "multipart/report"},
		{name: "unsigned although signed was asked", edit: func(c *as2test.AS2Config) { c.UnsignedMDN = true }, mdn: signedSync, status: 200, ctype: "multipart/report"},
		{name: "MDN with a 500", edit: func(c *as2test.AS2Config) { c.Status = 500 }, mdn: signedSync, status: 500, ctype: "multipart/signed"},
		{name: "garbled", edit: func(c *as2test.AS2Config) { c.GarbledMDN = true }, mdn: signedSync, status: 200, ctype: "text/html"},
		{name: "other Content-Type", edit: func(c *as2test.AS2Config) { c.MDNContentType = "application/octet-stream" }, mdn: signedSync, status: 200, ctype: "application/octet-stream"},
		{name: "no MDN asked for", status: 200},
		{name: "no AS2-To", mdn: signedSync, drop: "AS2-To", status: 400, ctype: "text/plain",
			readErr: func(err error) bool { var re *as2.RequestError; return errors.As(err, &re) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := cfg
			if tc.edit != nil {
				tc.edit(&c)
			}
			p := as2test.NewPartner(t, as2test.WithBehavior(as2test.AS2(c)))
			h, body := packed(t, tc.mdn)
			h.Del(tc.drop)
			req, err := http.NewRequest(http.MethodPost, p.URL, bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header = h
			resp, err := p.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			answer, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if chunked := len(resp.TransferEncoding) > 0; chunked != tc.chunked || !chunked && resp.ContentLength != int64(len(answer)) {
				t.Errorf("Transfer-Encoding %v, Content-Length %d for %d bytes; want chunked %v", resp.TransferEncoding, resp.ContentLength, len(answer), tc.chunked)
			}
			if mt, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";"); mt != tc.ctype {
				t.Errorf("Content-Type %q, want %s", resp.Header.Get("Content-Type"), tc.ctype)
			}
			if tc.ctype == "" && len(answer) != 0 {
				t.Errorf("answer %q, want none", answer)
			}

			reqs := p.Requests()
			if len(reqs) != 1 || reqs[0].AS2 == nil {
				t.Fatalf("recorded %d requests, want one read as AS2", len(reqs))
			}
			got := reqs[0].AS2
			if tc.readErr != nil {
				if !tc.readErr(got.Err) || got.Request != nil {
					t.Errorf("recorded error %v, request %v", got.Err, got.Request)
				}
				return
			}
			if got.Err != nil || len(got.Attachments) != 1 || string(got.Attachments[0].Body) != "hello" || len(got.Layers) != 2 {
				t.Errorf("recorded %+v", got)
			}
			if (got.Answer != nil) != (tc.mdn.Mode != as2.MDNNone) {
				t.Errorf("recorded answer %+v for MDN mode %v", got.Answer, tc.mdn.Mode)
			}
		})
	}
}
