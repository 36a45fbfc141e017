package as2

import (
	"bytes"
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"strings"
	"testing"
)

func TestParseMIC(t *testing.T) {
	t.Parallel()
	d256 := sha256.Sum256([]byte("x"))
	b256 := base64.StdEncoding.EncodeToString(d256[:])
	d1 := sha1.Sum([]byte("x"))
	b1 := base64.StdEncoding.EncodeToString(d1[:])
	tests := []struct {
		name, in string
		digest   []byte
		alg      crypto.Hash
		wantErr  string
	}{
		{name: "ours", in: b256 + ", sha-256", digest: d256[:], alg: crypto.SHA256},
		{name: "no space", in: b256 + ",sha256", digest: d256[:], alg: crypto.SHA256},
		{name: "spaces and upper case", in: "  " + b256 + " ,  SHA-256 ", digest: d256[:], alg: crypto.SHA256},
		{name: "rfc4130 sha1", in: "Hes6my+vIxIYxmvsA+MNpEOTPAc=, sha1", digest: mustB64(t, "Hes6my+vIxIYxmvsA+MNpEOTPAc="), alg: crypto.SHA1},
		{name: "sha-1", in: b1 + ", sha-1", digest: d1[:], alg: crypto.SHA1},
		{name: "unpadded base64", in: strings.TrimRight(b256, "=") + ", sha-256", digest: d256[:], alg: crypto.SHA256},
		{name: "wrapped digest", in: b256[:20] + "\r\n " + b256[20:] + ", sha-256", digest: d256[:], alg: crypto.SHA256},
		{name: "trailing semicolon", in: b256 + ", sha-256;", digest: d256[:], alg: crypto.SHA256},
		{name: "no algorithm", in: b256, wantErr: "no algorithm"},
		{name: "md5", in: "XrY7u+Ae7tCTyyK7j1rNww==, md5", wantErr: "obsolete"},
		{name: "not base64", in: "!!!, sha-256", wantErr: "not base64"},
		{name: "wrong length", in: b1 + ", sha-256", wantErr: "20-byte digest for sha-256"},
		{name: "empty", in: "", wantErr: "no algorithm"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := ParseMIC(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseMIC(%q) = %v, %v; want error %q", tc.in, m, err, tc.wantErr)
				}
				return
			}
			if err != nil || m.Alg != tc.alg || !bytes.Equal(m.Digest, tc.digest) {
				t.Fatalf("ParseMIC(%q) = %v, %v", tc.in, m, err)
			}
			back, err := ParseMIC(m.String())
			if err != nil || !back.Equal(m) {
				t.Fatalf("round trip of %q: %v, %v", m.String(), back, err)
			}
		})
	}
}

func mustB64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMICStringAndEqual(t *testing.T) {
	t.Parallel()
	m, err := ComputeMIC(crypto.SHA256, []byte("ISA*00~"), []byte("\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("ISA*00~\r\n"))
	want := base64.StdEncoding.EncodeToString(d[:]) + ", sha-256"
	if m.String() != want {
		t.Fatalf("String() = %q, want %q", m.String(), want)
	}
	other := MIC{Digest: d[:], Alg: crypto.SHA384}
	tests := []struct {
		name  string
		a, b  MIC
		equal bool
	}{
		{"same", m, MIC{Digest: d[:], Alg: crypto.SHA256}, true},
		{"other algorithm", m, other, false},
		{"other digest", m, MIC{Digest: make([]byte, 32), Alg: crypto.SHA256}, false},
		{"both empty", MIC{}, MIC{}, false},
	}
	for _, tc := range tests {
		if got := tc.a.Equal(tc.b); got != tc.equal {
			t.Errorf("%s: Equal = %v", tc.name, got)
		}
	}
	if !(MIC{}).IsZero() || m.IsZero() {
		t.Error("IsZero is wrong")
	}
}

func TestMICHasherStreams(t *testing.T) {
	t.Parallel()
	for _, alg := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		h, err := NewMICHasher(alg)
		if err != nil {
			t.Fatal(err)
		}
		data := bytes.Repeat([]byte("segment~\r\n"), 10000)
		if _, err := io.Copy(h, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		whole, _ := ComputeMIC(alg, data)
		if !h.MIC().Equal(whole) {
			t.Fatalf("%v: streamed MIC differs", alg)
		}
	}
	if _, err := NewMICHasher(crypto.MD5); err == nil {
		t.Fatal("NewMICHasher accepted MD5")
	}
	if _, err := ComputeMIC(crypto.SHA224, nil); err == nil {
		t.Fatal("ComputeMIC accepted SHA-224")
	}
}

func TestMICScopeFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		signed, encrypted, compressed, before bool
		want                                  MICScope
	}{
		{false, false, false, false, MICContent},
		{false, true, false, false, MICEntity},
		{false, false, true, false, MICEntity},
		{false, false, true, true, MICEntity}, // nothing signed: the order does not matter
		{false, true, true, false, MICEntity},
		{true, false, false, false, MICSignedEntity},
		{true, true, false, false, MICSignedEntity},
		{true, false, true, false, MICSignedEntity},
		{true, true, true, false, MICSignedEntity},
		{true, false, true, true, MICSignedCompressedEntity},
		{true, true, true, true, MICSignedCompressedEntity},
		{true, true, false, true, MICSignedEntity}, // before-sign without compression is no compression
	}
	for _, tc := range tests {
		got := MICScopeFor(tc.signed, tc.encrypted, tc.compressed, tc.before)
		if got != tc.want {
			t.Errorf("MICScopeFor(signed=%v, encrypted=%v, compressed=%v, before=%v) = %v, want %v",
				tc.signed, tc.encrypted, tc.compressed, tc.before, got, tc.want)
		}
		if got.IncludesHeaders() != (got != MICContent) || strings.HasPrefix(got.String(), "MICScope(") {
			t.Errorf("%v: IncludesHeaders or String wrong", got)
		}
	}
}
