package as2

import (
	"crypto"
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func TestQuoteID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, id, want string
	}{
		{"atomic", "PARTNERX", "PARTNERX"},
		{"duns digits", "0123456780000", "0123456780000"},
		{"specials allowed unquoted", "as2_company#01!", "as2_company#01!"},
		{"space is quoted", "AS2 Test", `"AS2 Test"`},
		{"quote is escaped", `my"id`, `"my\"id"`},
		{"backslash is escaped", `a\b`, `"a\\b"`},
		{"rfc4130bis example", "as2 Name", `"as2 Name"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := QuoteID(tc.id)
			if got != tc.want {
				t.Fatalf("QuoteID(%q) = %q, want %q", tc.id, got, tc.want)
			}
			back, err := UnquoteID(got)
			if err != nil || back != tc.id {
				t.Fatalf("UnquoteID(%q) = %q, %v; want %q", got, back, err, tc.id)
			}
		})
	}
}

func TestUnquoteID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want, wantErr string
	}{
		{name: "atomic", in: "OSSL", want: "OSSL"},
		{name: "surrounding space", in: "  OSSL \t", want: "OSSL"},
		{name: "quoted", in: `"AS2 Test"`, want: "AS2 Test"},
		{name: "quoted without need", in: `"PARTNERX"`, want: "PARTNERX"},
		{name: "escaped quote", in: `"a\"b"`, want: `a"b`},
		{name: "unquoted with space (older products)", in: "My Company", want: "My Company"},
		{name: "128 characters", in: strings.Repeat("x", 128), want: strings.Repeat("x", 128)},
		{name: "empty", in: "", wantErr: "empty AS2 name"},
		{name: "empty quotes", in: `""`, wantErr: "empty AS2 name"},
		{name: "129 characters", in: strings.Repeat("x", 129), wantErr: "at most 128"},
		{name: "unclosed quote", in: `"abc`, wantErr: "does not close"},
		{name: "lone quote", in: `"`, wantErr: "does not close"},
		{name: "lone backslash", in: `"abc\"`, wantErr: "lone backslash"},
		{name: "inner quote", in: `"a"b"`, wantErr: "unescaped quote"},
		{name: "control character", in: "ab\x01c", wantErr: "not printable ASCII"},
		{name: "non-ASCII", in: "Müller", wantErr: "not printable ASCII"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := UnquoteID(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("UnquoteID(%q) = %q, %v; want error containing %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("UnquoteID(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestNewMessageID(t *testing.T) {
	t.Parallel()
	re := regexp.MustCompile(`^<[A-Z2-7]{26}@([A-Za-z0-9.!#$%&'*+/=?^_{|}~-]+)>$`)
	tests := []struct{ name, domain, host string }{
		{"plain", "gw.example.com", "gw.example.com"},
		{"spaces removed", "my host.example", "myhost.example"},
		{"brackets and at removed", "<a@b>", "ab"},
		{"empty", "", "localhost"},
		{"only dots", "...", "localhost"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := NewMessageID(tc.domain)
			m := re.FindStringSubmatch(id)
			if m == nil || m[1] != tc.host {
				t.Fatalf("NewMessageID(%q) = %q, want <random@%s>", tc.domain, id, tc.host)
			}
			if err := ValidateMessageID(id); err != nil {
				t.Fatalf("ValidateMessageID(%q) = %v", id, err)
			}
		})
	}
	if a, b := NewMessageID("x"), NewMessageID("x"); a == b {
		t.Fatalf("two Message-IDs are equal: %s", a)
	}
}

func TestNormalizeMessageID(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"brackets", "<abc@host>", "abc@host"},
		{"no brackets", "abc@host", "abc@host"},
		{"white space", " \t<abc@host> ", "abc@host"},
		{"space inside brackets", "< abc@host >", "abc@host"},
		{"rfc4130 odd id", `<#as2_company#01#a4260as2_companyout#>`, `#as2_company#01#a4260as2_companyout#`},
		{"one bracket only", "<abc@host", "<abc@host"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := NormalizeMessageID(tc.in); got != tc.want {
				t.Fatalf("NormalizeMessageID(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestValidateMessageID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"bracketed", "<abc@host>", true},
		{"bare", "abc@host", true},
		{"rfc4130bis example", `<200207310834482A70BF63@\"~~foo~~\">`, true},
		{"empty", "", false},
		{"brackets only", "<>", false},
		{"space", "<abc def@host>", false},
		{"control", "<abc\x7f@host>", false},
		{"too long", "<" + strings.Repeat("a", 998) + ">", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := ValidateMessageID(tc.in); (err == nil) != tc.ok {
				t.Fatalf("ValidateMessageID(%q) = %v, want ok=%v", tc.in, err, tc.ok)
			}
		})
	}
}

func TestParseMICAlg(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want MICAlg
	}{
		{"sha1", MICAlgSHA1},
		{"sha-1", MICAlgSHA1},
		{"SHA1", MICAlgSHA1},
		{"SHA-1", MICAlgSHA1},
		{"sha256", MICAlgSHA256},
		{"sha-256", MICAlgSHA256},
		{"SHA-256", MICAlgSHA256},
		{"sha-256;", MICAlgSHA256},  // libas2
		{" SHA-256 ", MICAlgSHA256}, // OpenAS2, with spacing
		{`"sha-256"`, MICAlgSHA256},
		{"sha384", MICAlgSHA384},
		{"sha-384", MICAlgSHA384},
		{"sha512", MICAlgSHA512},
		{"SHA-512", MICAlgSHA512},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseMICAlg(tc.in)
			if err != nil || got != tc.want {
				t.Fatalf("ParseMICAlg(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
	for _, bad := range []string{"md5", "MD5", "sha224", "", "rsa", "sha-3"} {
		t.Run("unsupported "+bad, func(t *testing.T) {
			t.Parallel()
			_, err := ParseMICAlg(bad)
			var ue *UnsupportedMICAlgError
			if !errors.As(err, &ue) || ue.Name != bad {
				t.Fatalf("ParseMICAlg(%q) error = %v, want *UnsupportedMICAlgError", bad, err)
			}
			if strings.EqualFold(bad, "md5") && !strings.Contains(err.Error(), "obsolete") {
				t.Fatalf("md5 error does not say why: %v", err)
			}
		})
	}
}

func TestMICAlgString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		alg  MICAlg
		want string
		hash crypto.Hash
	}{
		{MICAlgSHA1, "sha-1", crypto.SHA1},
		{MICAlgSHA256, "sha-256", crypto.SHA256},
		{MICAlgSHA384, "sha-384", crypto.SHA384},
		{MICAlgSHA512, "sha-512", crypto.SHA512},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			t.Parallel()
			if tc.alg.String() != tc.want || tc.alg.Hash() != tc.hash || !tc.alg.Valid() {
				t.Fatalf("%v: String %q Hash %v Valid %v", tc.hash, tc.alg.String(), tc.alg.Hash(), tc.alg.Valid())
			}
			a, err := MICAlgFor(tc.hash)
			if err != nil || a != tc.alg {
				t.Fatalf("MICAlgFor(%v) = %v, %v", tc.hash, a, err)
			}
		})
	}
	if _, err := MICAlgFor(crypto.MD5); err == nil {
		t.Fatal("MICAlgFor(MD5) succeeded")
	}
	if MICAlg(crypto.SHA224).Valid() {
		t.Fatal("SHA-224 reported valid")
	}
}

func TestParseMICAlgList(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		want     []MICAlg
		wantErr  bool
	}{
		{"one", "sha-256", []MICAlg{MICAlgSHA256}, false},
		{"several", "sha-256, sha1", []MICAlg{MICAlgSHA256, MICAlgSHA1}, false},
		{"unknown skipped", "md5, sha-512", []MICAlg{MICAlgSHA512}, false},
		{"trailing semicolon", "sha-256;", []MICAlg{MICAlgSHA256}, false},
		{"only unknown", "md5", nil, true},
		{"empty", "", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseMICAlgList(tc.in)
			if (err != nil) != tc.wantErr || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ParseMICAlgList(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestParseDispositionOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		in       string
		signed   bool
		algs     []MICAlg
		params   []DispositionParam
		wantErr  bool
		wantText string // String() of the parsed options, when checked
	}{
		{
			name:   "ours",
			in:     "signed-receipt-protocol=optional, pkcs7-signature; signed-receipt-micalg=optional, sha-256, sha-1",
			signed: true, algs: []MICAlg{MICAlgSHA256, MICAlgSHA1},
			wantText: "signed-receipt-protocol=optional, pkcs7-signature; signed-receipt-micalg=optional, sha-256, sha-1",
		},
		{
			name:   "rfc4130 example without spaces",
			in:     "signed-receipt-protocol=optional,pkcs7-signature; signed-receipt-micalg=optional,sha1,md5",
			signed: true, algs: []MICAlg{MICAlgSHA1},
		},
		{
			name:   "OpenAS2 spelling",
			in:     "signed-receipt-protocol=optional, pkcs7-signature; signed-receipt-micalg=optional, SHA-256",
			signed: true, algs: []MICAlg{MICAlgSHA256},
		},
		{
			name:   "required, upper case, trailing semicolon",
			in:     "Signed-Receipt-Protocol=REQUIRED, PKCS7-Signature; Signed-Receipt-MICalg=Required, SHA256;",
			signed: true, algs: []MICAlg{MICAlgSHA256},
			params: []DispositionParam{
				{Name: "Signed-Receipt-Protocol", Required: true, Values: []string{"PKCS7-Signature"}},
				{Name: "Signed-Receipt-MICalg", Required: true, Values: []string{"SHA256"}},
			},
		},
		{
			name:   "folded value as unfolded",
			in:     "signed-receipt-protocol=optional,  pkcs7-signature;   signed-receipt-micalg=optional,sha-256",
			signed: true, algs: []MICAlg{MICAlgSHA256},
		},
		{
			name:   "importance missing",
			in:     "signed-receipt-protocol=pkcs7-signature; signed-receipt-micalg=sha-512",
			signed: true, algs: []MICAlg{MICAlgSHA512},
		},
		{
			name:   "quoted values",
			in:     `signed-receipt-protocol=optional, "pkcs7-signature"; signed-receipt-micalg=optional, "sha-256"`,
			signed: true, algs: []MICAlg{MICAlgSHA256},
		},
		{
			name:   "unknown parameter kept",
			in:     "signed-receipt-protocol=optional, pkcs7-signature; x-vendor=required, foo, bar",
			signed: true,
			params: []DispositionParam{
				{Name: "signed-receipt-protocol", Values: []string{"pkcs7-signature"}},
				{Name: "x-vendor", Required: true, Values: []string{"foo", "bar"}},
			},
		},
		{
			name:   "other protocol is not a signed receipt we make",
			in:     "signed-receipt-protocol=optional, pgp-signature; signed-receipt-micalg=optional, sha-256",
			signed: false, algs: []MICAlg{MICAlgSHA256},
		},
		{name: "empty", in: "", signed: false},
		{name: "no equals", in: "signed-receipt-protocol", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o, err := ParseDispositionOptions(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ParseDispositionOptions(%q) = %+v, want error", tc.in, o)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseDispositionOptions(%q): %v", tc.in, err)
			}
			if o.SignedReceipt() != tc.signed {
				t.Errorf("SignedReceipt() = %v, want %v", o.SignedReceipt(), tc.signed)
			}
			if got := o.MICAlgs(); !reflect.DeepEqual(got, tc.algs) {
				t.Errorf("MICAlgs() = %v, want %v", got, tc.algs)
			}
			if tc.params != nil && !reflect.DeepEqual(o.Params, tc.params) {
				t.Errorf("Params = %+v, want %+v", o.Params, tc.params)
			}
			if tc.wantText != "" && o.String() != tc.wantText {
				t.Errorf("String() = %q, want %q", o.String(), tc.wantText)
			}
			again, err := ParseDispositionOptions(o.String())
			if err != nil || !reflect.DeepEqual(again, o) {
				t.Errorf("round trip of %q = %+v, %v; want %+v", o.String(), again, err, o)
			}
		})
	}
}

func TestSignedReceiptOptions(t *testing.T) {
	t.Parallel()
	o := SignedReceiptOptions(MICAlgSHA256, MICAlgSHA1)
	want := "signed-receipt-protocol=optional, pkcs7-signature; signed-receipt-micalg=optional, sha-256, sha-1"
	if o.String() != want {
		t.Fatalf("String() = %q, want %q", o.String(), want)
	}
	if !o.SignedReceipt() || !reflect.DeepEqual(o.MICAlgs(), []MICAlg{MICAlgSHA256, MICAlgSHA1}) {
		t.Fatalf("options do not read back: %+v", o)
	}
}
