package as2

import (
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
)

// Header names of RFC 4130 §6 and §7.3, and the MIME and HTTP headers AS2 messages carry.
// HTTP and MIME header names are case-insensitive; these are the spellings we write.
const (
	HeaderAS2From                        = "AS2-From"
	HeaderAS2To                          = "AS2-To"
	HeaderAS2Version                     = "AS2-Version"
	HeaderEDIINTFeatures                 = "EDIINT-Features"
	HeaderMessageID                      = "Message-ID"
	HeaderOriginalMessageID              = "Original-Message-ID"
	HeaderDispositionNotificationTo      = "Disposition-Notification-To"
	HeaderDispositionNotificationOptions = "Disposition-Notification-Options"
	HeaderReceiptDeliveryOption          = "Receipt-Delivery-Option"
	HeaderRecipientAddress               = "Recipient-Address"
	HeaderSubject                        = "Subject"
	HeaderDate                           = "Date"
	HeaderFrom                           = "From"
	HeaderMIMEVersion                    = "MIME-Version"
	HeaderContentType                    = "Content-Type"
	HeaderContentTransferEncoding        = "Content-Transfer-Encoding"
	HeaderContentDisposition             = "Content-Disposition"
	HeaderContentID                      = "Content-ID"
)

// AS2Version is the AS2-Version we send. 1.1 announces compression (RFC 5402 §6) and 1.2 the
// EDIINT-Features header (RFC 6017); 1.3 (draft-petta-rfc4130bis) forbids generating SHA-1 and
// 3DES, which legacy partners still need, so we do not claim it.
const AS2Version = "1.2"

// EDIINTFeatures is the EDIINT-Features value we send: only what we implement. We send and
// receive several attachments in one message (RFC 6362); we do not implement certificate
// exchange messaging (CEM) nor AS2-Reliability, so they are not listed.
const EDIINTFeatures = "multiple-attachments"

// MaxIDLength is the longest AS2-From / AS2-To name, in characters (RFC 4130 §6.2).
const MaxIDLength = 128

// ValidateID checks that id is an AS2 name: 1 to 128 printable ASCII characters, spaces
// included (RFC 4130 §6.2). Quotes and backslashes are allowed: QuoteID escapes them.
func ValidateID(id string) error {
	if id == "" {
		return errors.New("as2: empty AS2 name (AS2-From / AS2-To need 1 to 128 printable ASCII characters)")
	}
	if len(id) > MaxIDLength {
		return fmt.Errorf("as2: AS2 name of %d characters: at most %d are allowed", len(id), MaxIDLength)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("as2: AS2 name %q has a character that is not printable ASCII at position %d", id, i)
		}
	}
	return nil
}

// isAS2Text reports whether c is AS2-text: printable ASCII except space, '"' and '\'.
func isAS2Text(c byte) bool {
	return c > 0x20 && c < 0x7f && c != '"' && c != '\\'
}

// QuoteID returns the header value for the AS2 name id: id itself when it is an
// AS2-atomic-name, else an AS2-quoted-name with '"' and '\' escaped (RFC 4130 §6.2).
// Call ValidateID first: QuoteID does not reject invalid names.
func QuoteID(id string) string {
	atomic := id != ""
	for i := 0; i < len(id); i++ {
		if !isAS2Text(id[i]) {
			atomic = false
			break
		}
	}
	if atomic {
		return id
	}
	var b strings.Builder
	b.Grow(len(id) + 2)
	b.WriteByte('"')
	for i := 0; i < len(id); i++ {
		if c := id[i]; c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(id[i])
	}
	b.WriteByte('"')
	return b.String()
}

// UnquoteID returns the AS2 name in an AS2-From or AS2-To header value, removing the quotes
// and escapes of an AS2-quoted-name, and validates it with ValidateID.
//
// QUIRK: older products send names with spaces unquoted ("AS2-From: My Company"); RFC 4130
// §6.2 asks receivers to make no restrictions, so an unquoted value is taken as it stands.
func UnquoteID(v string) (string, error) {
	v = strings.Trim(v, " \t")
	if len(v) >= 1 && v[0] == '"' {
		if len(v) < 2 || v[len(v)-1] != '"' {
			return "", fmt.Errorf("as2: AS2 name %q opens a quote it does not close", v)
		}
		inner := v[1 : len(v)-1]
		var b strings.Builder
		b.Grow(len(inner))
		for i := 0; i < len(inner); i++ {
			c := inner[i]
			if c == '\\' {
				if i+1 == len(inner) {
					return "", fmt.Errorf("as2: AS2 name %q ends with a lone backslash", v)
				}
				i++
				c = inner[i]
			} else if c == '"' {
				return "", fmt.Errorf("as2: AS2 name %q has an unescaped quote inside", v)
			}
			b.WriteByte(c)
		}
		v = b.String()
	}
	if err := ValidateID(v); err != nil {
		return "", err
	}
	return v, nil
}

// NewMessageID returns a new globally unique Message-ID in angle brackets, "<random@domain>"
// (RFC 5322 §3.6.4, RFC 4130 §5.3.3). The left part is crypto/rand.Text: 128 random bits in
// base32. Characters of
// domain that are not allowed in a dot-atom are removed, not replaced (draft-petta-rfc4130bis
// §5.3.3); an empty result becomes "localhost".
func NewMessageID(domain string) string {
	var d strings.Builder
	for i := 0; i < len(domain); i++ {
		if c := domain[i]; isAtext(c) || c == '.' {
			d.WriteByte(c)
		}
	}
	host := strings.Trim(d.String(), ".")
	if host == "" {
		host = "localhost"
	}
	return "<" + rand.Text() + "@" + host + ">"
}

// isAtext reports whether c is RFC 5322 atext.
func isAtext(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// MaxMessageIDLength is the longest Message-ID accepted (RFC 4130 §5.3.3).
const MaxMessageIDLength = 998

// NormalizeMessageID returns the form of a Message-ID used to match messages and MDNs:
// surrounding white space and one pair of angle brackets removed. RFC 4130 §5.3.3 says the
// brackets are not part of the identifier and receivers must not insist on them.
func NormalizeMessageID(id string) string {
	id = strings.TrimSpace(id)
	if len(id) >= 2 && id[0] == '<' && id[len(id)-1] == '>' {
		id = strings.TrimSpace(id[1 : len(id)-1])
	}
	return id
}

// ValidateMessageID checks a received Message-ID: not empty, at most 998 characters, and no
// space or control character (draft-petta-rfc4130bis §5.3.3). Angle brackets may be missing.
// A message that fails can be answered with "processed/error: invalid-message-id".
func ValidateMessageID(id string) error {
	n := NormalizeMessageID(id)
	if n == "" {
		return errors.New("as2: empty Message-ID")
	}
	if len(id) > MaxMessageIDLength {
		return fmt.Errorf("as2: Message-ID of %d characters: at most %d are allowed", len(id), MaxMessageIDLength)
	}
	for i := 0; i < len(n); i++ {
		if c := n[i]; c <= 0x20 || c >= 0x7f {
			return fmt.Errorf("as2: Message-ID %q has a space, control or non-ASCII character at position %d", id, i)
		}
	}
	return nil
}

// MICAlg is a digest algorithm as AS2 names it in Disposition-Notification-Options, in the
// micalg parameter of multipart/signed and in Received-Content-MIC.
type MICAlg crypto.Hash

// The MIC algorithms AS2 uses. SHA-1 remains for legacy partners (draft-petta-rfc4130bis
// Appendix B).
const (
	MICAlgSHA1   = MICAlg(crypto.SHA1)
	MICAlgSHA256 = MICAlg(crypto.SHA256)
	MICAlgSHA384 = MICAlg(crypto.SHA384)
	MICAlgSHA512 = MICAlg(crypto.SHA512)
)

// ParseMICAlg reads a MIC algorithm name in any of the spellings seen in the wild: "sha1",
// "sha-1", "SHA1", "sha256", "SHA-256", "sha-256;" and so on (RFC 3851 spells "sha1", RFC
// 5751 "sha-1"). "md5" and unknown names give an *UnsupportedMICAlgError.
//
// QUIRK: libas2 writes "micalg=sha-256;" and some products quote the value; a trailing ';',
// quotes and surrounding spaces are ignored.
func ParseMICAlg(s string) (MICAlg, error) {
	n := strings.ToLower(strings.Trim(s, " \t;\""))
	n = strings.ReplaceAll(n, "-", "")
	n = strings.ReplaceAll(n, "_", "")
	switch n {
	case "sha1":
		return MICAlgSHA1, nil
	case "sha256", "sha2256":
		return MICAlgSHA256, nil
	case "sha384", "sha2384":
		return MICAlgSHA384, nil
	case "sha512", "sha2512":
		return MICAlgSHA512, nil
	}
	return 0, &UnsupportedMICAlgError{Name: s}
}

// Hash returns the crypto.Hash of a.
func (a MICAlg) Hash() crypto.Hash { return crypto.Hash(a) }

// Valid reports whether a is one of the four AS2 MIC algorithms.
func (a MICAlg) Valid() bool {
	switch a {
	case MICAlgSHA1, MICAlgSHA256, MICAlgSHA384, MICAlgSHA512:
		return true
	}
	return false
}

// String returns the name we write: the RFC 5751 §3.4.3.2 micalg spelling, "sha-1",
// "sha-256", "sha-384" or "sha-512", used alike in micalg parameters, in
// Disposition-Notification-Options and in Received-Content-MIC. Receivers read "sha1" and
// "sha-1" alike (draft-petta-rfc4130bis §8.4.3).
func (a MICAlg) String() string {
	switch a {
	case MICAlgSHA1:
		return "sha-1"
	case MICAlgSHA256:
		return "sha-256"
	case MICAlgSHA384:
		return "sha-384"
	case MICAlgSHA512:
		return "sha-512"
	}
	return fmt.Sprintf("unknown-micalg-%d", int(a))
}

// MICAlgFor returns the MICAlg of h, or an error when AS2 has no name for it.
func MICAlgFor(h crypto.Hash) (MICAlg, error) {
	if a := MICAlg(h); a.Valid() {
		return a, nil
	}
	return 0, &UnsupportedMICAlgError{Name: h.String()}
}

// ParseMICAlgList reads a micalg parameter value, which RFC 1847 §2.1 allows to be a comma
// separated list, and returns the algorithms in order. Unknown names are skipped; the error
// reports them only when none is usable.
func ParseMICAlgList(s string) ([]MICAlg, error) {
	var algs []MICAlg
	var firstErr error
	for _, name := range strings.Split(s, ",") {
		if strings.Trim(name, " \t;\"") == "" {
			continue
		}
		a, err := ParseMICAlg(name)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		algs = append(algs, a)
	}
	if len(algs) == 0 {
		if firstErr == nil {
			firstErr = fmt.Errorf("as2: empty MIC algorithm list %q", s)
		}
		return nil, firstErr
	}
	return algs, nil
}

// Parameter names and values of Disposition-Notification-Options (RFC 4130 §7.3).
const (
	ParamSignedReceiptProtocol = "signed-receipt-protocol"
	ParamSignedReceiptMICAlg   = "signed-receipt-micalg"
	ProtocolPKCS7Signature     = "pkcs7-signature"
)

// DispositionOptions is a parsed Disposition-Notification-Options header (RFC 3798 §2.2,
// RFC 4130 §7.3): a list of parameters, each "name=importance, value, value...".
type DispositionOptions struct {
	Params []DispositionParam
}

// DispositionParam is one parameter of Disposition-Notification-Options. Unknown parameters
// are kept so that a receiver can tell whether a "required" one was not understood.
type DispositionParam struct {
	Name     string   // as written; compared case-insensitively
	Required bool     // importance "required" (false: "optional")
	Values   []string // the values after the importance, trimmed, in order
}

// SignedReceiptOptions returns the options that ask for a receipt signed with
// pkcs7-signature and a MIC in the given algorithms, most preferred first.
func SignedReceiptOptions(algs ...MICAlg) DispositionOptions {
	names := make([]string, len(algs))
	for i, a := range algs {
		names[i] = a.String()
	}
	return DispositionOptions{Params: []DispositionParam{
		{Name: ParamSignedReceiptProtocol, Values: []string{ProtocolPKCS7Signature}},
		{Name: ParamSignedReceiptMICAlg, Values: names},
	}}
}

// ParseDispositionOptions reads a Disposition-Notification-Options value. It accepts any
// case, any spacing, quoted values, empty parameters and a trailing ';'.
//
// QUIRK: OpenAS2 writes "signed-receipt-micalg=optional, SHA-256"; some products leave out
// the importance ("signed-receipt-micalg=sha256"): a first value that is neither "required"
// nor "optional" is taken as a value and the parameter as optional.
func ParseDispositionOptions(v string) (DispositionOptions, error) {
	var o DispositionOptions
	for _, seg := range strings.Split(v, ";") {
		seg = strings.TrimSpace(seg)
		if seg == "" {
			continue
		}
		name, rest, ok := strings.Cut(seg, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return DispositionOptions{}, fmt.Errorf("as2: Disposition-Notification-Options parameter %q is not name=importance, value", seg)
		}
		p := DispositionParam{Name: name}
		for i, val := range strings.Split(rest, ",") {
			val = strings.Trim(strings.TrimSpace(val), "\"")
			val = strings.TrimSpace(val)
			if i == 0 {
				switch strings.ToLower(val) {
				case "required":
					p.Required = true
					continue
				case "optional":
					continue
				}
			}
			if val != "" {
				p.Values = append(p.Values, val)
			}
		}
		o.Params = append(o.Params, p)
	}
	return o, nil
}

// Param returns the parameter called name (case-insensitively) and whether it is present.
func (o DispositionOptions) Param(name string) (DispositionParam, bool) {
	for _, p := range o.Params {
		if strings.EqualFold(p.Name, name) {
			return p, true
		}
	}
	return DispositionParam{}, false
}

// SignedReceipt reports whether the options ask for a signed receipt in a protocol we
// produce (pkcs7-signature, RFC 4130 §7.3).
func (o DispositionOptions) SignedReceipt() bool {
	p, ok := o.Param(ParamSignedReceiptProtocol)
	if !ok {
		return false
	}
	for _, v := range p.Values {
		if strings.EqualFold(v, ProtocolPKCS7Signature) {
			return true
		}
	}
	return false
}

// MICAlgs returns the requested MIC algorithms we support, in the sender's order of
// preference; unknown and unsupported names (md5) are left out, as draft-petta-rfc4130bis
// §8.3 asks.
func (o DispositionOptions) MICAlgs() []MICAlg {
	p, ok := o.Param(ParamSignedReceiptMICAlg)
	if !ok {
		return nil
	}
	var algs []MICAlg
	for _, v := range p.Values {
		if a, err := ParseMICAlg(v); err == nil {
			algs = append(algs, a)
		}
	}
	return algs
}

// String formats the options as we send them:
// "signed-receipt-protocol=optional, pkcs7-signature; signed-receipt-micalg=optional, sha-256".
func (o DispositionOptions) String() string {
	var b strings.Builder
	for i, p := range o.Params {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.Name)
		if p.Required {
			b.WriteString("=required")
		} else {
			b.WriteString("=optional")
		}
		for _, v := range p.Values {
			b.WriteString(", ")
			b.WriteString(v)
		}
	}
	return b.String()
}
