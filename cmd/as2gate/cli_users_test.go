package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/as2gate/as2gate/internal/store"
	"github.com/as2gate/as2gate/internal/store/sqlite"
	"github.com/as2gate/as2gate/internal/web"
)

// runCLIWithInput runs the command line with stdin reading in.
func runCLIWithInput(t *testing.T, in string, args ...string) (string, error) {
	t.Helper()
	cmd := rootCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetIn(strings.NewReader(in))
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

// TestCLIUsers manages the console's users in the database of a gateway's data folder, as
// an operator who is locked out does.
func TestCLIUsers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "as2gate.yaml")
	if err := os.WriteFile(cfgFile, []byte("data_dir: data\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := "--config=" + cfgFile
	if _, err := runCLI(t, "users", "list", conf); err == nil || !strings.Contains(err.Error(), "no gateway database") {
		t.Fatalf("users list without a database: %v", err)
	}
	// The gateway's first start: the database and its first admin.
	ctx := context.Background()
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o750); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "data", "as2gate.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := web.EnsureAdmin(ctx, st); err != nil {
		t.Fatal(err)
	}
	st.Close()
	// check opens the database again, as the running gateway would see it.
	check := func(name, password, role string) {
		t.Helper()
		st, err := sqlite.Open(ctx, filepath.Join(dir, "data", "as2gate.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		u, err := st.GetUser(ctx, name)
		if err != nil {
			t.Fatalf("GetUser(%s): %v", name, err)
		}
		if u.Role != role || bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(password)) != nil {
			t.Fatalf("user %s: role %q, password %q not its own", name, u.Role, password)
		}
	}

	out, err := runCLI(t, "users", "add", conf, "bob", "--role", "viewer")
	m := regexp.MustCompile(`^user bob added \(role viewer\), password ([A-Za-z0-9_-]{24}) \(shown only this once\)\n$`).FindStringSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("users add: %v\n%s", err, out)
	}
	check("bob", m[1], store.RoleViewer)
	out, err = runCLI(t, "users", "add", conf, "carol")
	if err != nil || !strings.Contains(out, "role operator") {
		t.Fatalf("users add without --role: %v\n%s", err, out)
	}

	out, err = runCLI(t, "users", "list", conf)
	if err != nil {
		t.Fatalf("users list: %v\n%s", err, out)
	}
	for _, want := range []string{"NAME", "admin  ", "bob  ", "viewer", "carol", "operator"} {
		if !strings.Contains(out, want) {
			t.Errorf("users list lacks %q:\n%s", want, out)
		}
	}

	// passwd from stdin ends the user's sessions.
	st, err = sqlite.Open(ctx, filepath.Join(dir, "data", "as2gate.db"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := st.CreateSession(ctx, &store.Session{TokenHash: "ab12", User: "bob", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	out, err = runCLIWithInput(t, "a-new-long-password\n", "users", "passwd", conf, "bob")
	if err != nil || out != "password of bob set; its sessions ended\n" {
		t.Fatalf("users passwd from stdin: %v\n%s", err, out)
	}
	check("bob", "a-new-long-password", store.RoleViewer)
	st, err = sqlite.Open(ctx, filepath.Join(dir, "data", "as2gate.db"))
	if err != nil {
		t.Fatal(err)
	}
	if list, _ := st.ListSessions(ctx, "bob"); len(list) != 0 {
		t.Errorf("bob has %d sessions after passwd", len(list))
	}
	st.Close()
	// Nothing on stdin: a generated password, printed once.
	out, err = runCLIWithInput(t, "", "users", "passwd", conf, "admin")
	m = regexp.MustCompile(`^password of admin set to ([A-Za-z0-9_-]{24}) \(shown only this once\); its sessions ended\n$`).FindStringSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("users passwd generating: %v\n%s", err, out)
	}
	check("admin", m[1], store.RoleAdmin)

	out, err = runCLI(t, "users", "remove", conf, "bob")
	if err != nil || out != "user bob removed\n" {
		t.Fatalf("users remove: %v\n%s", err, out)
	}

	// Errors name the problem.
	for _, tc := range []struct {
		in   string
		args []string
		want string
	}{
		{"", []string{"users", "add", conf, "dave", "--role", "root"}, `--role "root": want one of admin, operator, viewer`},
		{"", []string{"users", "add", conf, "CAROL"}, `user "CAROL" exists already`},
		{"", []string{"users", "add", conf, "da ve"}, "letters, digits"},
		{"short\n", []string{"users", "passwd", conf, "carol"}, "at least 12 are needed"},
		{strings.Repeat("x", 80) + "\n", []string{"users", "passwd", conf, "carol"}, "at most 72 bytes"},
		{"a-new-long-password\n", []string{"users", "passwd", conf, "nobody"}, `there is no user "nobody"`},
		{"", []string{"users", "remove", conf, "bob"}, `there is no user "bob"`},
		{"", []string{"users", "remove", conf, "admin"}, "admin is the last admin"},
	} {
		if out, err := runCLIWithInput(t, tc.in, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error with %q\n%s", tc.args, err, tc.want, out)
		}
	}
	check("admin", m[1], store.RoleAdmin)
}
