package web

import (
	"encoding/base64"
	"errors"
	"fmt"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// Password rules. bcrypt reads at most 72 bytes, so a longer password would be silently
// cut; it is refused instead. The cost is bcrypt's default (one comparison takes tens of
// milliseconds on a server core, a few hundred on a busy small machine). Stored hashes
// above MaxBcryptCost are not compared at all (the work doubles with each step: cost 14
// is already about 16 times cost 10), so a hash planted with cost 31 cannot tie up the CPU.
const (
	MinPasswordLength = 12
	MaxPasswordBytes  = 72
	PasswordCost      = bcrypt.DefaultCost
	MaxBcryptCost     = 14
)

// ErrWeakPassword is wrapped by HashPassword's refusals.
var ErrWeakPassword = errors.New("password refused")

// CheckPassword tells why a new password is refused, or nil.
func CheckPassword(pw string) error {
	switch n := utf8.RuneCountInString(pw); {
	case n < MinPasswordLength:
		return fmt.Errorf("%w: it has %d characters; at least %d are needed", ErrWeakPassword, n, MinPasswordLength)
	case len(pw) > MaxPasswordBytes:
		return fmt.Errorf("%w: it is %d bytes long; at most %d bytes are used by bcrypt", ErrWeakPassword, len(pw), MaxPasswordBytes)
	}
	return nil
}

// HashPassword checks a new password and returns its bcrypt hash.
func HashPassword(pw string) ([]byte, error) {
	if err := CheckPassword(pw); err != nil {
		return nil, err
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), PasswordCost)
	if err != nil {
		return nil, fmt.Errorf("web: hashing a password: %w", err)
	}
	return h, nil
}

// GeneratePassword returns a random password of 24 characters (144 bits), to be shown once.
func GeneratePassword() string {
	return base64.RawURLEncoding.EncodeToString(randomBytes(18))
}
