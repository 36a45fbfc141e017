package as2

import (
	"crypto"
	"crypto/sha256"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func TestParseDisposition(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		in       string
		want     Disposition // Raw is filled in from in
		positive bool
		wantErr  bool
	}{
		{"processed", "automatic-action/MDN-sent-automatically; processed",
			Disposition{ActionMode: ActionAutomatic, SendingMode: SendingAutomatic, Type: "processed"}, true, false},
		{"error, RFC spelling", "automatic-action/MDN-sent-automatically; processed/error: decryption-failed",
			Disposition{ActionMode: ActionAutomatic, SendingMode: SendingAutomatic, Type: "processed", Modifier: "error", Description: "decryption-failed"}, false, false},
		{"Error:x, OpenAS2", "automatic-action/MDN-sent-automatically; processed/Error:authentication-failed",
			Disposition{ActionMode: ActionAutomatic, SendingMode: SendingAutomatic, Type: "processed", Modifier: "error", Description: "authentication-failed"}, false, false},
		{"error=x, libas2", "automatic-action/MDN-sent-automatically; processed/error=integrity-check-failed",
			Disposition{ActionMode: ActionAutomatic, SendingMode: SendingAutomatic, Type: "processed", Modifier: "error", Description: "integrity-check-failed"}, false, false},
		{"failure=x, libas2", "automatic-action/MDN-sent-automatically; failed/failure=unsupported format",
			Disposition{ActionMode: ActionAutomatic, SendingMode: SendingAutomatic, Type: "failed", Modifier: "failure", Description: "unsupported format"}, false, false},
		{"RFC failed/Failure", `automatic-action/MDN-sent-automatically;   failed/Failure: unsupported MIC-algorithms`,
			Disposition{ActionMode: ActionAutomatic, SendingMode: SendingAutomatic, Type: "failed", Modifier: "failure", Description: "unsupported MIC-algorithms"}, false, false},
		{"warning is positive", "automatic-action/MDN-sent-automatically; processed/warning: duplicate-document",
			Disposition{ActionMode: ActionAutomatic, SendingMode: SendingAutomatic, Type: "processed", Modifier: "warning", Description: "duplicate-document"}, true, false},
		{"Warning with comma", "automatic-action/MDN-sent-automatically; processed/Warning: authentication-failed, processing continued",
			Disposition{ActionMode: ActionAutomatic, SendingMode: SendingAutomatic, Type: "processed", Modifier: "warning", Description: "authentication-failed, processing continued"}, true, false},
		{"bare error modifier", "automatic-action/MDN-sent-automatically; processed/error",
			Disposition{ActionMode: ActionAutomatic, SendingMode: SendingAutomatic, Type: "processed", Modifier: "error"}, false, false},
		{"extra white space and case", "  Automatic-Action / mdn-sent-automatically ;  PROCESSED  ",
			Disposition{ActionMode: ActionAutomatic, SendingMode: SendingAutomatic, Type: "processed"}, true, false},
		{"folded, as unfolded", "automatic-action/MDN-sent-automatically;\t  processed/error: decryption-failed",
			Disposition{ActionMode: ActionAutomatic, SendingMode: SendingAutomatic, Type: "processed", Modifier: "error", Description: "decryption-failed"}, false, false},
		{"manual modes", "manual-action/MDN-sent-manually; processed",
			Disposition{ActionMode: ActionManual, SendingMode: SendingManual, Type: "processed"}, true, false},
		{"no mode", "processed",
			Disposition{Type: "processed"}, true, false},
		{"no mode, error", "processed/error: decryption-failed",
			Disposition{Type: "processed", Modifier: "error", Description: "decryption-failed"}, false, false},
		{"empty mode", "; processed",
			Disposition{Type: "processed"}, true, false},
		{"action mode only", "automatic-action; processed",
			Disposition{ActionMode: ActionAutomatic, Type: "processed"}, true, false},
		{"unknown modifier", "automatic-action/MDN-sent-automatically; processed/ignored",
			Disposition{ActionMode: ActionAutomatic, SendingMode: SendingAutomatic, Type: "processed", Modifier: "ignored"}, false, false},
		{"empty modifier", "automatic-action/MDN-sent-automatically; processed/: x",
			Disposition{ActionMode: ActionAutomatic, SendingMode: SendingAutomatic, Type: "processed", Modifier: "/x", Description: "x"}, false, false},
		{"garbled type", "automatic-action/MDN-sent-automatically; processedd",
			Disposition{ActionMode: ActionAutomatic, SendingMode: SendingAutomatic, Type: "processedd"}, false, false},
		{"two dispositions", "automatic-action/MDN-sent-automatically; processed; error: x",
			Disposition{ActionMode: ActionAutomatic, SendingMode: SendingAutomatic, Type: "processed; error: x"}, false, false},
		{"RFC 3798 displayed", "manual-action/MDN-sent-manually; displayed",
			Disposition{ActionMode: ActionManual, SendingMode: SendingManual, Type: "displayed"}, false, false},
		{"failed alone", "automatic-action/MDN-sent-automatically; failed",
			Disposition{ActionMode: ActionAutomatic, SendingMode: SendingAutomatic, Type: "failed"}, false, false},
		{"empty", "  ", Disposition{}, false, true},
		{"mode without type", "automatic-action/MDN-sent-automatically;", Disposition{ActionMode: ActionAutomatic, SendingMode: SendingAutomatic}, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, err := ParseDisposition(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseDisposition(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			}
			want := tc.want
			want.Raw = tc.in
			if d != want {
				t.Fatalf("ParseDisposition(%q) =\n %+v, want\n %+v", tc.in, d, want)
			}
			if d.Positive() != tc.positive {
				t.Fatalf("Positive() = %v, want %v", d.Positive(), tc.positive)
			}
		})
	}
}

func TestDispositionString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d    Disposition
		want string
	}{
		{Processed(), "automatic-action/MDN-sent-automatically; processed"},
		{ProcessedWithError(DecryptionFailed), "automatic-action/MDN-sent-automatically; processed/error: decryption-failed"},
		{ProcessedWithWarning(DuplicateDocument), "automatic-action/MDN-sent-automatically; processed/warning: duplicate-document"},
		{Failed(UnsupportedMICAlgorithms), "automatic-action/MDN-sent-automatically; failed/failure: unsupported MIC-algorithms"},
		{Disposition{Type: "processed", Modifier: "error"}, "automatic-action/MDN-sent-automatically; processed/error"},
	}
	for _, tc := range tests {
		if got := tc.d.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
		back, err := ParseDisposition(tc.d.String())
		back.Raw = ""
		want := tc.d
		want.ActionMode, want.SendingMode = ActionAutomatic, SendingAutomatic
		if err != nil || back != want {
			t.Errorf("round trip of %q = %+v, %v", tc.want, back, err)
		}
	}
	if !Processed().Positive() || !ProcessedWithWarning("x").Positive() || ProcessedWithError("x").Positive() || Failed("x").Positive() {
		t.Error("Positive of the constructors is wrong")
	}
}

func testMIC(t testing.TB) *MIC {
	t.Helper()
	m, err := ComputeMIC(crypto.SHA256, []byte("Content-Type: application/edi-x12\r\n\r\nISA*00~\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	return &m
}

func TestBuildMDNGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mdn  MDN
	}{
		{"processed", MDN{
			ReportingUA:       "as2gate; gw.example.com",
			OriginalRecipient: "AS2 Test",
			FinalRecipient:    "AS2 Test",
			OriginalMessageID: "<200207310834482A70BF63@example.com>",
			Disposition:       Processed(),
			ReceivedMIC:       testMIC(t),
			Text:              "The message was received.\nIt was processed.\n",
		}},
		{"error", MDN{
			ReportingUA:       "as2gate",
			FinalRecipient:    "OSSL",
			OriginalMessageID: "<abc@partner>",
			Disposition:       ProcessedWithError(DecryptionFailed),
			Errors:            []string{"no recipient info for our certificate"},
			Extensions:        []Field{{Name: "X-Trace", Value: "42"}},
		}},
		{"warning default text", MDN{
			FinalRecipient:    "OSSL",
			OriginalMessageID: "<dup@partner>",
			Disposition:       ProcessedWithWarning(DuplicateDocument),
			Warnings:          []string{"An identical message was received before."},
			ReceivedMIC:       testMIC(t),
		}},
		{"failed utf-8 text", MDN{
			FinalRecipient:    "OSSL",
			OriginalMessageID: "<x@y>",
			Disposition:       Failed(UnsupportedMICAlgorithms),
			Failures:          []string{"md5 requested"},
			Text:              "Échec: algorithme non pris en charge",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, err := BuildMDN(&tc.mdn, "----=_Part_MDN_1")
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "mdn_"+strings.ReplaceAll(tc.name, " ", "_")+".golden")
			if *update {
				if err := os.WriteFile(golden, e.Raw, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if string(e.Raw) != string(want) {
				t.Fatalf("BuildMDN output differs from %s:\n got: %q\nwant: %q", golden, e.Raw, want)
			}
			if strings.Contains(strings.ReplaceAll(string(e.Raw), "\r\n", ""), "\n") {
				t.Fatal("bare LF in the MDN")
			}
			if ct := e.Header.Get(HeaderContentType); !strings.HasPrefix(ct, "multipart/report; report-type=disposition-notification;") {
				t.Fatalf("Content-Type = %q", ct)
			}

			// It parses back to what was built, from the entity and from the HTTP form.
			for _, parse := range []func() (*MDN, error){
				func() (*MDN, error) { return ParseMDN(e.Raw) },
				func() (*MDN, error) { return ParseMDNBody(e.Header.Get(HeaderContentType), e.Body()) },
			} {
				got, err := parse()
				if err != nil {
					t.Fatal(err)
				}
				want := tc.mdn
				if want.Text == "" {
					want.Text = defaultMDNText(&tc.mdn)
				}
				want.Text = strings.TrimRight(strings.ReplaceAll(want.Text, "\n", "\r\n"), "\r\n")
				got.Disposition.Raw = ""
				got.rawMIC = ""
				for i := range got.Extensions {
					got.Extensions[i].Raw = nil
				}
				if !reflect.DeepEqual(*got, want) {
					t.Fatalf("parsed back:\n %+v\nwant\n %+v", *got, want)
				}
			}
		})
	}
}

func TestBuildMDNRefuses(t *testing.T) {
	t.Parallel()
	ok := MDN{FinalRecipient: "X", Disposition: Processed()}
	tests := []struct {
		name     string
		mdn      MDN
		boundary string
	}{
		{"no disposition", MDN{FinalRecipient: "X"}, ""},
		{"no final recipient", MDN{Disposition: Processed()}, ""},
		{"line break in field", MDN{FinalRecipient: "X", Disposition: Processed(), ReportingUA: "a\r\nDisposition: processed"}, ""},
		{"bad extension name", MDN{FinalRecipient: "X", Disposition: Processed(), Extensions: []Field{{Name: "Bad Name", Value: "x"}}}, ""},
		{"md5 MIC", MDN{FinalRecipient: "X", Disposition: Processed(), ReceivedMIC: &MIC{Digest: make([]byte, 16), Alg: crypto.MD5}}, ""},
		{"boundary in text", MDN{FinalRecipient: "X", Disposition: Processed(), Text: "a\n--b--\n"}, "b"},
		{"bad boundary", ok, "a\r\nb"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if e, err := BuildMDN(&tc.mdn, tc.boundary); err == nil {
				t.Fatalf("BuildMDN succeeded: %q", e.Raw)
			}
		})
	}
	e, err := BuildMDN(&ok, "")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := e.Header.Boundary(); err != nil || !strings.HasPrefix(b, "----=_Part_") {
		t.Fatalf("random boundary = %q, %v", b, err)
	}
}

// MDNs as real products and the RFC examples write them.
func TestParseMDN(t *testing.T) {
	t.Parallel()
	d256 := sha256.Sum256([]byte("x"))
	mic256 := &MIC{Digest: d256[:], Alg: crypto.SHA256}
	rfcSHA1 := &MIC{Digest: mustB64(t, "Hes6my+vIxIYxmvsA+MNpEOTPAc="), Alg: crypto.SHA1}
	tests := []struct {
		name     string
		file     string // under testdata/
		positive bool
		check    func(t *testing.T, m *MDN)
		wantErr  string
	}{
		{name: "RFC 4130 A.4, folded disposition, LF", file: "mdn_rfc4130_a4.txt", positive: true, check: func(t *testing.T, m *MDN) {
			want := MDN{
				ReportingUA: "AS2@test:8101", OriginalRecipient: "AS2 Test", FinalRecipient: "AS2 Test",
				OriginalMessageID: "<#as2_company#01#a4260as2_companyout#>",
				Disposition:       Disposition{ActionMode: ActionAutomatic, SendingMode: SendingAutomatic, Type: "processed"},
				ReceivedMIC:       rfcSHA1,
			}
			m.Disposition.Raw, m.rawMIC, m.Text = "", "", ""
			if !reflect.DeepEqual(*m, want) {
				t.Fatalf("got %+v\nwant %+v", *m, want)
			}
		}},
		{name: "OpenAS2 unsigned, no MIC, Error:x", file: "mdn_openas2_error.txt", positive: false, check: func(t *testing.T, m *MDN) {
			if m.ReceivedMIC != nil || m.Disposition.Modifier != "error" || m.Disposition.Description != "decryption-failed" {
				t.Fatalf("got %+v", m)
			}
			if !strings.Contains(m.Text, "could not be decrypted") {
				t.Fatalf("Text = %q", m.Text)
			}
		}},
		{name: "libas2 error=x, lower-case fields", file: "mdn_libas2_error.txt", positive: false, check: func(t *testing.T, m *MDN) {
			if m.Disposition.Modifier != "error" || m.Disposition.Description != "authentication-failed" || m.OriginalMessageID != "<libas2-1@host>" {
				t.Fatalf("got %+v", m)
			}
		}},
		{name: "processed, sha-256 MIC in upper-case field name", file: "mdn_processed_sha256.txt", positive: true, check: func(t *testing.T, m *MDN) {
			if m.ReceivedMIC == nil || !m.ReceivedMIC.Equal(*mic256) {
				t.Fatalf("ReceivedMIC = %v", m.ReceivedMIC)
			}
			if len(m.Extensions) != 1 || m.Extensions[0].Name != "X-Vendor-Id" || m.Extensions[0].Value != "folded value" {
				t.Fatalf("Extensions = %+v", m.Extensions)
			}
		}},
		{name: "processed disposition with an Error field", file: "mdn_processed_with_error_field.txt", positive: false},
		{name: "no Original-Message-ID, unreadable MIC", file: "mdn_minimal.txt", positive: true, check: func(t *testing.T, m *MDN) {
			if m.OriginalMessageID != "" || m.ReceivedMIC != nil || m.rawMIC != "garbage" {
				t.Fatalf("got %+v", m)
			}
		}},
		{name: "bare disposition-notification", file: "mdn_bare_dn.txt", positive: true},
		{name: "base64 disposition part", file: "mdn_base64_dn.txt", positive: true},
		{name: "no disposition part", file: "mdn_no_dn_part.txt", wantErr: "without a message/disposition-notification part"},
		{name: "no Disposition field", file: "mdn_no_disposition.txt", wantErr: "no Disposition field"},
		{name: "signed", file: "mdn_signed.txt", wantErr: "signed MDN"},
		{name: "not an MDN", file: "not_mdn.txt", wantErr: "not an MDN"},
		{name: "broken multipart", file: "mdn_broken_multipart.txt", wantErr: "unreadable multipart/report"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			raw, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			m, err := ParseMDN(raw)
			if tc.wantErr != "" {
				var me *MDNError
				if !errors.As(err, &me) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseMDN error = %v, want *MDNError %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Positive() != tc.positive {
				t.Fatalf("Positive() = %v, want %v (%+v)", m.Positive(), tc.positive, m.Disposition)
			}
			if tc.check != nil {
				tc.check(t, m)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	mic := testMIC(t)
	other := &MIC{Digest: make([]byte, 32), Alg: crypto.SHA256}
	sha1MIC, _ := ComputeMIC(crypto.SHA1, []byte("x"))
	base := func(mod func(m *MDN)) *MDN {
		m := &MDN{FinalRecipient: "X", OriginalMessageID: "<id@host>", Disposition: Processed(), ReceivedMIC: mic}
		if mod != nil {
			mod(m)
		}
		return m
	}
	var (
		mdnErr  *MDNError
		dispErr *DispositionError
		micErr  *MICMismatchError
	)
	tests := []struct {
		name     string
		mdn      *MDN
		id       string
		expected *MIC
		target   any // nil: success
	}{
		{"match", base(nil), "<id@host>", mic, nil},
		{"brackets differ", base(nil), "id@host", mic, nil},
		{"no MIC expected", base(func(m *MDN) { m.ReceivedMIC = nil }), "<id@host>", nil, nil},
		{"warning is success", base(func(m *MDN) { m.Disposition = ProcessedWithWarning(DuplicateDocument) }), "<id@host>", mic, nil},
		{"no Original-Message-ID", base(func(m *MDN) { m.OriginalMessageID = "" }), "<id@host>", mic, nil},
		{"other message", base(nil), "<other@host>", mic, &mdnErr},
		{"negative", base(func(m *MDN) { m.Disposition = ProcessedWithError(DecryptionFailed); m.ReceivedMIC = nil }), "<id@host>", mic, &dispErr},
		{"failed", base(func(m *MDN) { m.Disposition = Failed(UnsupportedFormat) }), "<id@host>", nil, &dispErr},
		{"error field", base(func(m *MDN) { m.Errors = []string{"x"} }), "<id@host>", mic, &dispErr},
		{"MIC missing", base(func(m *MDN) { m.ReceivedMIC = nil }), "<id@host>", mic, &micErr},
		{"MIC differs", base(func(m *MDN) { m.ReceivedMIC = other }), "<id@host>", mic, &micErr},
		{"MIC algorithm differs", base(func(m *MDN) { m.ReceivedMIC = &sha1MIC }), "<id@host>", mic, &micErr},
		{"MIC unreadable", base(func(m *MDN) { m.ReceivedMIC, m.rawMIC = nil, "zzz, sha-256" }), "<id@host>", mic, &mdnErr},
		{"nil MDN", nil, "<id@host>", mic, &mdnErr},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Match(tc.mdn, tc.id, tc.expected)
			if tc.target == nil {
				if err != nil {
					t.Fatalf("Match = %v, want nil", err)
				}
				return
			}
			if err == nil || !errors.As(err, tc.target) {
				t.Fatalf("Match = %v (%T), want %T", err, err, tc.target)
			}
		})
	}
	err := Match(base(func(m *MDN) { m.Disposition = ProcessedWithError(DecryptionFailed) }), "<id@host>", nil)
	if !errors.As(err, &dispErr) || dispErr.Disposition.Description != DecryptionFailed || dispErr.MDN == nil {
		t.Fatalf("DispositionError does not carry the disposition: %v", err)
	}
	err = Match(base(func(m *MDN) { m.ReceivedMIC = nil }), "<id@host>", mic)
	if !errors.As(err, &micErr) || !micErr.Want.Equal(*mic) || !micErr.Got.IsZero() {
		t.Fatalf("MICMismatchError = %+v", micErr)
	}
}

func BenchmarkMDN(b *testing.B) {
	m := &MDN{
		ReportingUA: "as2gate", OriginalRecipient: "PARTNERX", FinalRecipient: "PARTNERX",
		OriginalMessageID: "<0123456789ABCDEF@gw.example.com>", Disposition: Processed(), ReceivedMIC: testMIC(b),
	}
	b.Run("build", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := BuildMDN(m, "----=_Part_1"); err != nil {
				b.Fatal(err)
			}
		}
	})
	e, err := BuildMDN(m, "----=_Part_1")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ParseMDN(e.Raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("build+parse+match", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			e, err := BuildMDN(m, "")
			if err != nil {
				b.Fatal(err)
			}
			got, err := ParseMDN(e.Raw)
			if err != nil {
				b.Fatal(err)
			}
			if err := Match(got, m.OriginalMessageID, m.ReceivedMIC); err != nil {
				b.Fatal(err)
			}
		}
	})
}
