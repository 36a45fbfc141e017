package inbound

import "testing"

func TestSafeName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"po850.edi":             "po850.edi",
		"../../etc/passwd":      "passwd",
		`..\..\windows\win.ini`: "win.ini",
		"/abs/path/report.xml":  "report.xml",
		"..":                    "",
		".":                     "",
		".hidden":               "hidden",
		"a\x00b\nc.txt":         "abc.txt",
		`what?:*"<>|.txt`:       "what_______.txt",
		"  spaced name.csv  ":   "spaced name.csv",
		"":                      "",
		"dir/":                  "",
		"résumé.pdf":            "résumé.pdf",
	} {
		if got := SafeName(in); got != want {
			t.Errorf("SafeName(%q) = %q, want %q", in, got, want)
		}
	}
	long := ""
	for i := 0; i < 150; i++ {
		long += "é"
	}
	if got := SafeName(long); len(got) > 200 || got != long[:200] {
		t.Errorf("long name cut to %d bytes: %q", len(got), got[len(got)-4:])
	}
}
