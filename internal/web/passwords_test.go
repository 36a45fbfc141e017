package web

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestCheckPassword(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, pw string
		want     string // "" when accepted
	}{
		{"empty", "", "it has 0 characters; at least 12"},
		{"eleven", "elevenchars", "it has 11 characters"},
		{"twelve", "twelve-chars", ""},
		// Characters, not bytes, count for the minimum: 12 letters of 2 bytes each.
		{"twelve non-ASCII", strings.Repeat("é", 12), ""},
		{"72 bytes", strings.Repeat("x", 72), ""},
		{"73 bytes", strings.Repeat("x", 73), "73 bytes long; at most 72"},
		{"40 characters of 2 bytes", strings.Repeat("é", 40), "80 bytes long"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckPassword(tc.pw)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("CheckPassword refused it: %v", err)
			case tc.want != "" && (err == nil || !errors.Is(err, ErrWeakPassword) || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("CheckPassword = %v, want ErrWeakPassword with %q", err, tc.want)
			}
		})
	}
}

func TestHashPasswordCost(t *testing.T) {
	t.Parallel()
	pw := GeneratePassword()
	if len(pw) != 24 || CheckPassword(pw) != nil {
		t.Fatalf("generated password %q", pw)
	}
	h, err := HashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	if cost, _ := bcrypt.Cost(h); cost != PasswordCost || PasswordCost > MaxBcryptCost {
		t.Errorf("cost %d, want %d (at most %d)", cost, PasswordCost, MaxBcryptCost)
	}
	if _, err := HashPassword("short"); !errors.Is(err, ErrWeakPassword) {
		t.Errorf("HashPassword(short) = %v, want ErrWeakPassword", err)
	}
}
