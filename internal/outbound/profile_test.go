package outbound

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/as2gate/as2gate/as2"
	"github.com/as2gate/as2gate/as2/as2test"
	"github.com/as2gate/as2gate/internal/store"
)

func TestMergeHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name             string
		partner, profile http.Header
		want             http.Header
	}{
		{"profile only", nil, http.Header{"X-A": {"1"}}, http.Header{"X-A": {"1"}}},
		{"partner only", http.Header{"X-A": {"1"}}, nil, http.Header{"X-A": {"1"}}},
		{"disjoint", http.Header{"X-A": {"1"}}, http.Header{"X-B": {"2"}}, http.Header{"X-A": {"1"}, "X-B": {"2"}}},
		{"profile wins", http.Header{"X-A": {"partner"}}, http.Header{"X-A": {"profile"}}, http.Header{"X-A": {"profile"}}},
		{"profile replaces every value", http.Header{"X-A": {"1", "2"}}, http.Header{"X-A": {"3"}}, http.Header{"X-A": {"3"}}},
		{"profile key not canonical", http.Header{"X-Both": {"partner"}}, http.Header{"x-both": {"profile"}}, http.Header{"X-Both": {"profile"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			before := fmt.Sprint(tc.partner)
			got := mergeHeader(tc.partner, tc.profile)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("mergeHeader = %v, want %v", got, tc.want)
			}
			if fmt.Sprint(tc.partner) != before {
				t.Errorf("the partner's headers changed to %v (were %v)", tc.partner, before)
			}
		})
	}
}

// profileRouter is the rig's router with send profiles.
type profileRouter struct {
	*rigPartners
	profiles []string
}

func (p profileRouter) Route(ctx context.Context, partner string) (*Route, error) {
	rt, err := p.rigPartners.Route(ctx, partner)
	if err != nil {
		return nil, err
	}
	rt.Profiles = p.profiles
	return rt, nil
}

func TestSubmitProfile(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	submit := func(router Router, profile string) (*store.Message, error) {
		return r.w.Submit(t.Context(), router, Submission{
			Partner: rigPartner, Profile: profile,
			Files: []SubmitFile{{Name: "order.x12", Body: bytes.NewReader(rigPayload)}},
		})
	}
	withProfiles := profileRouter{r.partners, []string{"invoices", "orders"}}
	tests := []struct {
		name    string
		router  Router
		profile string
		err     string // "" for accepted
	}{
		{"none", withProfiles, "", ""},
		{"known", withProfiles, "orders", ""},
		{"unknown", withProfiles, "invoice", `unknown profile "invoice": the send profiles are invoices, orders`},
		{"none configured", r.partners, "invoices", `unknown profile "invoices": no send profiles are configured`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := submit(tc.router, tc.profile)
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := r.get(t, m.ID); got.Profile != tc.profile {
					t.Errorf("stored profile %q, want %q", got.Profile, tc.profile)
				}
				return
			}
			var se *SubmitError
			if !errors.As(err, &se) || se.Msg != tc.err {
				t.Fatalf("Submit: %v, want a SubmitError %q", err, tc.err)
			}
		})
	}
}

// TestWorkerSendsProfileHeaders checks the headers on the wire: the AS2 headers, then the
// partner's, then the profile's, which win.
func TestWorkerSendsProfileHeaders(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	partnerHeader := http.Header{"X-Custom": {"partner"}, "X-Both": {"partner"}}
	r.partners.edit(rigPartner, func(pt *Partner) {
		pt.Pack.Header = partnerHeader
		pt.Profiles = map[string]http.Header{"invoices": {"X-Both": {"profile"}, "X-Profile": {"yes"}}}
	})
	p := r.fake(t, as2test.AS2(r.as2Config()))
	router := profileRouter{r.partners, []string{"invoices"}}

	tests := []struct {
		profile string
		want    map[string]string // "" for absent
	}{
		{"invoices", map[string]string{"X-Custom": "partner", "X-Both": "profile", "X-Profile": "yes"}},
		{"", map[string]string{"X-Custom": "partner", "X-Both": "partner", "X-Profile": ""}},
	}
	for i, tc := range tests {
		m, err := r.w.Submit(t.Context(), router, Submission{
			Partner: rigPartner, Profile: tc.profile,
			Files: []SubmitFile{{Name: "order.x12", Body: bytes.NewReader(rigPayload)}},
		})
		if err != nil {
			t.Fatal(err)
		}
		r.step(t, m.ID)
		if got := r.get(t, m.ID); got.State != store.StateSent {
			t.Fatalf("profile %q: %s (%s), want sent", tc.profile, got.State, got.LastError)
		}
		reqs := p.Requests()
		if len(reqs) != i+1 {
			t.Fatalf("the partner received %d requests, want %d", len(reqs), i+1)
		}
		h := reqs[i].Header
		for name, want := range tc.want {
			if got := strings.Join(h.Values(name), ","); got != want {
				t.Errorf("profile %q: %s = %q, want %q", tc.profile, name, got, want)
			}
		}
		if got := h.Get(as2.HeaderAS2From); got != rigStation {
			t.Errorf("profile %q: AS2-From = %q, want %s", tc.profile, got, rigStation)
		}
		if got := r.get(t, m.ID).WireHeader.Get("X-Both"); got != tc.want["X-Both"] {
			t.Errorf("profile %q: stored wire header X-Both = %q, want %q", tc.profile, got, tc.want["X-Both"])
		}
	}
	if partnerHeader.Get("X-Both") != "partner" || partnerHeader.Get("X-Profile") != "" {
		t.Errorf("packing changed the partner's configured headers: %v", partnerHeader)
	}
}

// TestWorkerProfileGone checks a message whose profile was removed from the configuration
// after it was queued: it fails as a configuration problem rather than leaving without the
// headers it was submitted with.
func TestWorkerProfileGone(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	r.partners.edit(rigPartner, func(pt *Partner) {
		pt.Profiles = map[string]http.Header{"invoices": {"X-Profile": {"yes"}}}
	})
	p := r.fake(t, as2test.AS2(r.as2Config()))
	m, err := r.w.Submit(t.Context(), profileRouter{r.partners, []string{"invoices"}}, Submission{
		Partner: rigPartner, Profile: "invoices",
		Files: []SubmitFile{{Name: "order.x12", Body: bytes.NewReader(rigPayload)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r.partners.edit(rigPartner, func(pt *Partner) { pt.Profiles = nil })
	r.step(t, m.ID)
	got := r.get(t, m.ID)
	if got.State != store.StateFailed || got.LastCode != CodeConfig || !strings.Contains(got.LastError, `"invoices"`) {
		t.Errorf("%s, %s: %s; want failed, %s, naming the profile", got.State, got.LastCode, got.LastError, CodeConfig)
	}
	if n := len(p.Requests()); n != 0 {
		t.Errorf("the partner received %d requests, want none", n)
	}
}
