package outbound

import "testing"

func TestDetectContentType(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, head, want string
	}{
		{"po.txt", "ISA*00*          *00*", "application/edi-x12"},
		{"po.dat", "\xef\xbb\xbf\r\nISA|00|", "application/edi-x12"},
		{"orders", "UNA:+.? 'UNB+UNOC:3+S+R'", "application/edifact"},
		{"orders", "UNB+UNOA:1+S+R'", "application/edifact"},
		{"trad", "STX=ANA:1+S+R'", "application/edi-consent"},
		{"x.edi", "hello", "application/edi-consent"},
		{"invoice", "<?xml version=\"1.0\"?><a/>", "application/xml"},
		{"invoice", "  <Invoice/>", "application/xml"},
		{"data.xml", "not xml", "application/xml"},
		{"report.pdf", "%PDF-1.7", "application/pdf"},
		{"notes", "ISAAC wrote this", "application/octet-stream"},
		{"blob", "\x00\x01", "application/octet-stream"},
	}
	for _, tc := range cases {
		if got := DetectContentType(tc.name, []byte(tc.head)); got != tc.want {
			t.Errorf("DetectContentType(%q, %q) = %q, want %q", tc.name, tc.head, got, tc.want)
		}
	}
}
