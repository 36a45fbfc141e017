package config

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestLoadProfiles(t *testing.T) {
	t.Parallel()
	f := newValidateFixture(t)
	c, err := f.load(withTop(`profiles:
  - name: invoices
    headers: {X-Biz-Type: invoice, x-priority: high}
  - name: orders
    headers:
      X-Biz-Type: order
`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.ProfileNames(), []string{"invoices", "orders"}; !slices.Equal(got, want) {
		t.Fatalf("ProfileNames() = %q, want %q", got, want)
	}
	p := c.Profile("invoices")
	if p == nil {
		t.Fatal(`Profile("invoices") = nil`)
	}
	want := http.Header{"X-Biz-Type": {"invoice"}, "X-Priority": {"high"}}
	if fmt.Sprint(p.Header) != fmt.Sprint(want) {
		t.Errorf("invoices headers = %v, want %v", p.Header, want)
	}
	if c.Profile("nope") != nil {
		t.Error(`Profile("nope") != nil`)
	}
}

// TestValidateProfiles checks that each invalid profile setting is reported once, under its
// key path, with its line.
func TestValidateProfiles(t *testing.T) {
	t.Parallel()
	f := newValidateFixture(t)
	tests := []struct {
		name, yaml, key, msg string
	}{
		{"name missing", "profiles: [{headers: {X-A: b}}]", "profiles[0].name", "required"},
		{"name blank", "profiles: [{name: ' ', headers: {X-A: b}}]", "profiles[0].name", "required"},
		{"name padded", "profiles: [{name: ' invoices', headers: {X-A: b}}]", "profiles[0].name", "leading or trailing space"},
		{"name twice", "profiles: [{name: invoices, headers: {X-A: b}}, {name: invoices, headers: {X-A: c}}]", "profiles[1].name", `"invoices" is already the name of profiles[0]`},
		{"no headers", "profiles: [{name: invoices}]", "profiles[0].headers", "required"},
		{"header name", "profiles: [{name: invoices, headers: {'X Bad': b}}]", "profiles[0].headers.X Bad", "is not an HTTP header name"},
		{"header value line break", "profiles: [{name: invoices, headers: {X-A: \"b\\r\\nX-Evil: 1\"}}]", "profiles[0].headers.X-A", "line break"},
		{"header value NUL", "profiles: [{name: invoices, headers: {X-A: \"b\\0\"}}]", "profiles[0].headers.X-A", "line break or NUL"},
		{"as2-from", "profiles: [{name: invoices, headers: {AS2-From: X}}]", "profiles[0].headers.As2-From", "the gateway sets As2-From itself"},
		{"as2-to", "profiles: [{name: invoices, headers: {as2-to: X}}]", "profiles[0].headers.As2-To", "the gateway sets As2-To itself"},
		{"as2-version", "profiles: [{name: invoices, headers: {AS2-Version: '1.1'}}]", "profiles[0].headers.As2-Version", "itself"},
		{"message-id", "profiles: [{name: invoices, headers: {Message-ID: '<x@y>'}}]", "profiles[0].headers.Message-Id", "itself"},
		{"content-type", "profiles: [{name: invoices, headers: {Content-Type: text/plain}}]", "profiles[0].headers.Content-Type", "itself"},
		{"disposition-notification-to", "profiles: [{name: invoices, headers: {Disposition-Notification-To: a@b}}]", "profiles[0].headers.Disposition-Notification-To", "itself"},
		{"disposition-notification family", "profiles: [{name: invoices, headers: {Disposition-Notification-Whatever: x}}]", "profiles[0].headers.Disposition-Notification-Whatever", "it follows mdn"},
		{"receipt-delivery-option", "profiles: [{name: invoices, headers: {Receipt-Delivery-Option: 'http://x/'}}]", "profiles[0].headers.Receipt-Delivery-Option", "itself"},
		{"mime-version", "profiles: [{name: invoices, headers: {MIME-Version: '1.0'}}]", "profiles[0].headers.Mime-Version", "itself"},
		{"content-transfer-encoding", "profiles: [{name: invoices, headers: {Content-Transfer-Encoding: binary}}]", "profiles[0].headers.Content-Transfer-Encoding", "itself"},
		{"content-disposition", "profiles: [{name: invoices, headers: {Content-Disposition: attachment}}]", "profiles[0].headers.Content-Disposition", "itself"},
		{"ediint-features", "profiles: [{name: invoices, headers: {EDIINT-Features: multiple-attachments}}]", "profiles[0].headers.Ediint-Features", "itself"},
		{"unknown key", "profiles: [{name: invoices, header: {X-A: b}, headers: {X-A: b}}]", "profiles[0].header", `did you mean "headers"?`},
		{"not a list", "profiles: {name: invoices}", "profiles", "expected a list"},

		// The same protocol headers are refused in a partner's headers.
		{"partner mime-version", withPartner("headers: {MIME-Version: '1.0'}"), "partners[0].headers.Mime-Version", "itself"},
		{"partner ediint-features", withPartner("headers: {EDIINT-Features: CEM}"), "partners[0].headers.Ediint-Features", "itself"},
		{"partner content-disposition", withPartner("headers: {Content-Disposition: attachment}"), "partners[0].headers.Content-Disposition", "itself"},
		{"partner disposition-notification family", withPartner("headers: {Disposition-Notification-Extra: x}"), "partners[0].headers.Disposition-Notification-Extra", "it follows mdn"},
		{"partner message-id", withPartner("headers: {message-id: '<a@b>'}"), "partners[0].headers.Message-Id", "itself"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			text := tc.yaml
			if strings.HasPrefix(text, "profiles:") {
				text = withTop(text)
			}
			_, err := Load(f.writeString(fmt.Sprintf("profile%d.yaml", i), text))
			ps := problemsOf(t, err)
			if len(ps) != 1 {
				t.Fatalf("problems:%s\nwant only %s: ...%s...", formatProblems(ps), tc.key, tc.msg)
			}
			if ps[0].Key != tc.key || !strings.Contains(ps[0].Message, tc.msg) {
				t.Errorf("problem %s\nwant %s: ...%s...", ps[0], tc.key, tc.msg)
			}
			if ps[0].Line == 0 {
				t.Errorf("problem %s has no line", ps[0])
			}
		})
	}
}

// TestValidateProfilesBuiltInGo checks that a Config built in Go gets the same checks as a
// file.
func TestValidateProfilesBuiltInGo(t *testing.T) {
	t.Parallel()
	c := Default()
	c.DataDir = t.TempDir()
	c.Profiles = []*Profile{
		{Name: "ok", Header: http.Header{"X-A": {"b"}}},
		{Name: "bad", Header: http.Header{"As2-To": {"X"}}},
	}
	ps := problemsOf(t, c.Validate())
	if len(ps) != 1 || ps[0].Key != "profiles[1].headers.As2-To" {
		t.Fatalf("problems:%s\nwant only profiles[1].headers.As2-To", formatProblems(ps))
	}
}
