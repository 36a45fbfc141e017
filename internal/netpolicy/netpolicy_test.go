package netpolicy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

// fakeResolver answers from a table and never touches the network.
type fakeResolver map[string][]netip.Addr

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := f[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	r := fakeResolver{
		"public.example":  {netip.MustParseAddr("203.0.113.7")},
		"internal.corp":   {netip.MustParseAddr("10.1.2.3")},
		"mixed.example":   {netip.MustParseAddr("203.0.113.8"), netip.MustParseAddr("192.168.1.1")},
		"metadata.target": {netip.MustParseAddr("169.254.169.254")},
	}
	cases := []struct {
		url          string
		allowPrivate bool
		blocked      bool
		bad          bool
	}{
		{url: "https://public.example/mdn"},
		{url: "https://203.0.113.9:8443/mdn"},
		{url: "http://127.0.0.1:4080/as2", blocked: true},
		{url: "http://[::1]/as2", blocked: true},
		{url: "http://internal.corp/as2", blocked: true},
		{url: "http://mixed.example/as2", blocked: true},
		{url: "http://metadata.target/", blocked: true},
		{url: "http://100.64.0.1/", blocked: true},
		{url: "http://[::ffff:10.0.0.1]/", blocked: true},
		{url: "http://127.0.0.1:4080/as2", allowPrivate: true},
		{url: "mailto:as2@example.com", bad: true},
		{url: "http:///nohost", bad: true},
		{url: "http://unknown.invalid/", bad: true},
	}
	for _, tc := range cases {
		err := CheckURL(context.Background(), tc.url, tc.allowPrivate, r)
		var ae *AddressError
		switch {
		case tc.blocked && !errors.As(err, &ae):
			t.Errorf("%s: err = %v, want an AddressError", tc.url, err)
		case tc.bad && (err == nil || errors.As(err, &ae)):
			t.Errorf("%s: err = %v, want a URL error", tc.url, err)
		case !tc.blocked && !tc.bad && err != nil:
			t.Errorf("%s: %v", tc.url, err)
		}
	}
}

// TestDialerRefusesLoopback connects through the guarded dialer to a real loopback server.
func TestDialerRefusesLoopback(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	for _, allow := range []bool{false, true} {
		d := Dialer(&net.Dialer{}, allow)
		client := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
		resp, err := client.Get(srv.URL)
		if resp != nil {
			resp.Body.Close()
		}
		var ae *AddressError
		if allow != (err == nil) || (!allow && !errors.As(err, &ae)) {
			t.Errorf("allowPrivate=%v: err = %v", allow, err)
		}
	}
}
