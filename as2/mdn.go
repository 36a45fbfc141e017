package as2

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Values of the Disposition field (RFC 3798 §3.2.6, RFC 4130 §7.4.3, §7.5).
const (
	ActionAutomatic  = "automatic-action"
	ActionManual     = "manual-action"
	SendingAutomatic = "MDN-sent-automatically"
	SendingManual    = "MDN-sent-manually"

	TypeProcessed = "processed"
	TypeFailed    = "failed"

	ModifierError   = "error"
	ModifierWarning = "warning"
	ModifierFailure = "failure"
)

// Descriptions that follow a disposition modifier: the errors of RFC 4130 §7.4.3 and §7.5.4,
// RFC 5402 §5 and draft-petta-rfc4130bis §8.5.4, and the failures of RFC 4130 §7.5.3.
const (
	AuthenticationFailed        = "authentication-failed"
	DecompressionFailed         = "decompression-failed"
	DecryptionFailed            = "decryption-failed"
	InsufficientMessageSecurity = "insufficient-message-security"
	IntegrityCheckFailed        = "integrity-check-failed"
	UnexpectedProcessingError   = "unexpected-processing-error"
	DuplicateFilename           = "duplicate-filename"
	IllegalFilename             = "illegal-filename"
	InvalidMessageID            = "invalid-message-id"
	UnknownTradingRelationship  = "unknown-trading-relationship"

	SenderEqualsReceiver     = "sender-equals-receiver"
	UnsupportedFormat        = "unsupported format"
	UnsupportedMICAlgorithms = "unsupported MIC-algorithms"

	DuplicateDocument = "duplicate-document"
)

// Disposition is the Disposition field of an MDN:
// "action-mode/sending-mode; type[/modifier[: description]]".
type Disposition struct {
	ActionMode  string // "automatic-action" or "manual-action"
	SendingMode string // "MDN-sent-automatically" or "MDN-sent-manually"
	Type        string // "processed" or "failed", lower-cased (RFC 3798 also has "displayed", ...)
	Modifier    string // "", "error", "warning" or "failure", lower-cased
	Description string // the text after the modifier, e.g. "decryption-failed"
	Raw         string // the field value as received; empty for a disposition built here
}

// Processed returns the positive disposition "automatic-action/MDN-sent-automatically;
// processed".
func Processed() Disposition {
	return Disposition{ActionMode: ActionAutomatic, SendingMode: SendingAutomatic, Type: TypeProcessed}
}

// ProcessedWithError returns "processed/error: description" (RFC 4130 §7.5.4), for a message
// that was received but could not be processed.
func ProcessedWithError(description string) Disposition {
	d := Processed()
	d.Modifier, d.Description = ModifierError, description
	return d
}

// ProcessedWithWarning returns "processed/warning: description" (RFC 4130 §7.5.5), for a
// message that was processed although something exceptional happened.
func ProcessedWithWarning(description string) Disposition {
	d := Processed()
	d.Modifier, d.Description = ModifierWarning, description
	return d
}

// Failed returns "failed/failure: description" (RFC 4130 §7.5.3), for a request the receiver
// cannot honour, such as an unsupported MIC algorithm.
func Failed(description string) Disposition {
	return Disposition{ActionMode: ActionAutomatic, SendingMode: SendingAutomatic,
		Type: TypeFailed, Modifier: ModifierFailure, Description: description}
}

// Positive reports whether the disposition says the message was processed: type "processed"
// with no modifier or with a warning. Anything else, including a disposition that could not
// be read, is not positive: an error is never taken for a success.
func (d Disposition) Positive() bool {
	return d.Type == TypeProcessed && (d.Modifier == "" || d.Modifier == ModifierWarning)
}

// String formats the disposition as we write it, e.g.
// "automatic-action/MDN-sent-automatically; processed/error: decryption-failed". Missing modes
// are written as automatic.
func (d Disposition) String() string {
	action, sending := d.ActionMode, d.SendingMode
	if action == "" {
		action = ActionAutomatic
	}
	if sending == "" {
		sending = SendingAutomatic
	}
	s := action + "/" + sending + "; " + d.Type
	if d.Modifier != "" {
		s += "/" + d.Modifier
		if d.Description != "" {
			s += ": " + d.Description
		}
	}
	return s
}

// ParseDisposition reads a Disposition field value. It is lenient about form, never about
// meaning: what it cannot read ends up in Type or Modifier as written, which makes the
// disposition not Positive. It accepts:
//
//   - "automatic-action/MDN-sent-automatically; processed" (RFC 4130 §7.5.2);
//   - "processed/error: x", "processed/warning: x", "failed/failure: x" in any case, with any
//     spacing (RFC 4130 §7.4.3 and §7.5.6);
//   - QUIRK: "processed/Error:x" (OpenAS2), "processed/error=x" and "failed/failure=x"
//     (libas2);
//   - QUIRK: a missing or partial disposition mode ("processed", "; processed").
//
// Only an empty value is an error.
func ParseDisposition(s string) (Disposition, error) {
	d := Disposition{Raw: s}
	v := strings.TrimSpace(s)
	if v == "" {
		return d, errors.New("as2: empty Disposition field")
	}
	mode, rest, hasMode := strings.Cut(v, ";")
	if !hasMode {
		mode, rest = "", v
	}
	if mode = strings.TrimSpace(mode); mode != "" {
		action, sending, _ := strings.Cut(mode, "/")
		d.ActionMode = canonicalCase(strings.TrimSpace(action), ActionAutomatic, ActionManual)
		d.SendingMode = canonicalCase(strings.TrimSpace(sending), SendingAutomatic, SendingManual)
	}
	rest = strings.TrimSpace(rest)
	typ, mod, hasMod := strings.Cut(rest, "/")
	d.Type = strings.ToLower(strings.TrimSpace(typ))
	if hasMod {
		mod = strings.TrimSpace(mod)
		name, desc := mod, ""
		if i := strings.IndexAny(mod, ":="); i >= 0 {
			name, desc = mod[:i], mod[i+1:]
		}
		d.Modifier = strings.ToLower(strings.TrimSpace(name))
		d.Description = strings.TrimSpace(desc)
		if d.Modifier == "" {
			// "processed/" or "processed/: x": a modifier was meant but none is readable.
			d.Modifier = "/" + d.Description
		}
	}
	if d.Type == "" {
		return d, fmt.Errorf("as2: Disposition %q has no disposition type", s)
	}
	return d, nil
}

func canonicalCase(s string, known ...string) string {
	for _, k := range known {
		if strings.EqualFold(s, k) {
			return k
		}
	}
	return s
}

// MDN is a message disposition notification as AS2 uses it (RFC 4130 §7.4, RFC 3798 §3):
// the machine-readable fields of the message/disposition-notification part and the
// human-readable text.
type MDN struct {
	ReportingUA       string      // Reporting-UA: the product or host that reports
	OriginalRecipient string      // the address of Original-Recipient, usually the AS2-To name
	FinalRecipient    string      // the address of Final-Recipient: the AS2-To of the message
	OriginalMessageID string      // Message-ID of the message answered, as received: brackets kept
	Disposition       Disposition // what happened to the message
	Failures          []string    // Failure fields
	Errors            []string    // Error fields
	Warnings          []string    // Warning fields
	ReceivedMIC       *MIC        // Received-Content-MIC; nil when absent or unreadable
	Extensions        []Field     // other fields, in order (Name and Value; Raw when parsed)
	Text              string      // the human-readable part

	rawMIC string // the Received-Content-MIC value as received, when present
}

// Positive reports whether the MDN says the message was processed: a positive Disposition
// and no Failure or Error field.
func (m *MDN) Positive() bool {
	return m.Disposition.Positive() && len(m.Failures) == 0 && len(m.Errors) == 0
}

// BuildMDN writes m as a multipart/report; report-type=disposition-notification entity (RFC
// 3462, RFC 4130 §7.4.2): a text/plain part with m.Text (or a sentence made from the
// disposition when empty) and a message/disposition-notification part with the fields in
// the order of RFC 4130 §7.4.2, lines ending in CRLF.
//
// The entity's Raw bytes (a Content-Type header field, a blank line, the body) are what a
// signed MDN signs as the first part of its multipart/signed. For an unsigned MDN the
// Content-Type value goes into the HTTP header and Body() is the HTTP body.
//
// boundary may be empty: a random one is made.
func BuildMDN(m *MDN, boundary string) (*Entity, error) {
	if boundary == "" {
		boundary = NewBoundary()
	}
	if err := validateBoundary(boundary); err != nil {
		return nil, err
	}
	if m.Disposition.Type == "" {
		return nil, errors.New("as2: MDN without a disposition type")
	}
	if m.FinalRecipient == "" {
		return nil, errors.New("as2: MDN without a Final-Recipient (RFC 3798 §3.2.4 requires it)")
	}

	var fields bytes.Buffer
	var ferr error
	field := func(name, value string) {
		if ferr != nil {
			return
		}
		if !validFieldName(name) {
			ferr = fmt.Errorf("as2: MDN field name %q is not valid", name)
			return
		}
		if strings.ContainsAny(value, "\r\n") {
			ferr = fmt.Errorf("as2: MDN field %s holds a line break", name)
			return
		}
		fields.WriteString(name)
		fields.WriteString(": ")
		fields.WriteString(value)
		fields.WriteString("\r\n")
	}
	if m.ReportingUA != "" {
		field("Reporting-UA", m.ReportingUA)
	}
	if m.OriginalRecipient != "" {
		field("Original-Recipient", "rfc822; "+QuoteID(m.OriginalRecipient))
	}
	field("Final-Recipient", "rfc822; "+QuoteID(m.FinalRecipient))
	if m.OriginalMessageID != "" {
		field("Original-Message-ID", m.OriginalMessageID)
	}
	field("Disposition", m.Disposition.String())
	for _, v := range m.Failures {
		field("Failure", v)
	}
	for _, v := range m.Errors {
		field("Error", v)
	}
	for _, v := range m.Warnings {
		field("Warning", v)
	}
	for _, f := range m.Extensions {
		field(f.Name, f.Value)
	}
	if m.ReceivedMIC != nil {
		if _, err := MICAlgFor(m.ReceivedMIC.Alg); err != nil {
			return nil, err
		}
		field("Received-Content-MIC", m.ReceivedMIC.String())
	}
	if ferr != nil {
		return nil, ferr
	}

	text := m.Text
	if text == "" {
		text = defaultMDNText(m)
	}
	text = strings.TrimRight(string(ToCRLF([]byte(text))), "\r\n") + "\r\n"
	dash := "--" + boundary
	for _, line := range strings.Split(text, "\r\n") {
		if strings.HasPrefix(line, dash) {
			return nil, errors.New("as2: MDN text holds the multipart boundary")
		}
	}

	var b bytes.Buffer
	b.Grow(512 + len(text) + fields.Len())
	b.WriteString("Content-Type: multipart/report; report-type=disposition-notification; boundary=\"" + boundary + "\"\r\n\r\n")
	b.WriteString(dash + "\r\n")
	charset, cte := "us-ascii", "7bit"
	if !isASCII(text) {
		charset, cte = "utf-8", "8bit"
	}
	b.WriteString("Content-Type: text/plain; charset=" + charset + "\r\n")
	b.WriteString("Content-Transfer-Encoding: " + cte + "\r\n\r\n")
	b.WriteString(text)
	b.WriteString("\r\n" + dash + "\r\n")
	cte = "7bit"
	if !isASCII(fields.String()) {
		cte = "8bit"
	}
	b.WriteString("Content-Type: message/disposition-notification\r\n")
	b.WriteString("Content-Transfer-Encoding: " + cte + "\r\n\r\n")
	b.Write(fields.Bytes())
	b.WriteString("\r\n" + dash + "--\r\n")
	return ParseEntity(b.Bytes())
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func defaultMDNText(m *MDN) string {
	id := m.OriginalMessageID
	if id == "" {
		id = "(no Message-ID)"
	}
	d := m.Disposition
	switch {
	case d.Positive() && d.Modifier == ModifierWarning:
		return fmt.Sprintf("The AS2 message %s sent to %s was received and processed with a warning: %s.", id, m.FinalRecipient, d.Description)
	case d.Positive():
		return fmt.Sprintf("The AS2 message %s sent to %s was received and processed. This is no guarantee that its content was accepted by the application that reads it.", id, m.FinalRecipient)
	}
	reason := d.Description
	if reason == "" {
		reason = d.Type + "/" + d.Modifier
	}
	return fmt.Sprintf("The AS2 message %s sent to %s was received but could not be processed: %s.", id, m.FinalRecipient, reason)
}

// ParseMDN reads an unsigned MDN entity, header block included: a multipart/report (or,
// QUIRK, a bare message/disposition-notification). A signed MDN must be verified and its
// first part handed here.
func ParseMDN(entity []byte) (*MDN, error) {
	e, err := ParseEntity(entity)
	if err != nil {
		return nil, &MDNError{Reason: "unreadable MIME header", Err: err}
	}
	return ParseMDNBody(e.Header.Get(HeaderContentType), e.Body())
}

// ParseMDNBody reads an unsigned MDN whose Content-Type is given apart from its body, as with
// an unsigned synchronous MDN where the Content-Type is an HTTP header.
//
// It is lenient: field names in any case, folded lines, LF line ends, missing
// Original-Message-ID, Final-Recipient or Received-Content-MIC (left empty), the
// disposition-notification part anywhere in the report. Errors are *MDNError.
func ParseMDNBody(contentType string, body []byte) (*MDN, error) {
	mt, params, err := ParseMediaType(contentType)
	if err != nil {
		return nil, &MDNError{Reason: "unreadable Content-Type", Err: err}
	}
	switch mt {
	case "message/disposition-notification":
		return parseDispositionNotification(body, "")
	case "multipart/report":
	case "multipart/signed":
		return nil, &MDNError{Reason: "signed MDN: verify it and parse its first part"}
	default:
		return nil, &MDNError{Reason: fmt.Sprintf("content type %s is not an MDN (want multipart/report)", mt)}
	}
	boundary := params["boundary"]
	parts, err := SplitMultipart(body, boundary)
	if err != nil {
		return nil, &MDNError{Reason: "unreadable multipart/report", Err: err}
	}
	var text string
	var haveText bool
	for _, p := range parts {
		e, err := p.Entity()
		if err != nil {
			return nil, &MDNError{Reason: "unreadable report part", Err: err}
		}
		switch mt := e.Header.MediaType(); {
		case mt == "message/disposition-notification":
			content, err := e.DecodedBody()
			if err != nil {
				return nil, &MDNError{Reason: "undecodable disposition-notification part", Err: err}
			}
			return parseDispositionNotification(content, text)
		case strings.HasPrefix(mt, "text/") && !haveText:
			if b, err := e.DecodedBody(); err == nil {
				text, haveText = strings.TrimRight(string(b), "\r\n"), true
			}
		}
	}
	return nil, &MDNError{Reason: "multipart/report without a message/disposition-notification part"}
}

func parseDispositionNotification(content []byte, text string) (*MDN, error) {
	m := &MDN{Text: text}
	var haveDisposition bool
	for _, f := range parseFieldsLenient(content) {
		switch strings.ToLower(f.Name) {
		case "reporting-ua":
			m.ReportingUA = f.Value
		case "original-recipient":
			m.OriginalRecipient = recipientAddress(f.Value)
		case "final-recipient":
			m.FinalRecipient = recipientAddress(f.Value)
		case "original-message-id":
			m.OriginalMessageID = f.Value
		case "disposition":
			d, err := ParseDisposition(f.Value)
			if err != nil {
				return nil, &MDNError{Reason: "unreadable Disposition field", Err: err}
			}
			m.Disposition, haveDisposition = d, true
		case "failure":
			m.Failures = append(m.Failures, f.Value)
		case "error":
			m.Errors = append(m.Errors, f.Value)
		case "warning":
			m.Warnings = append(m.Warnings, f.Value)
		case "received-content-mic":
			m.rawMIC = f.Value
			if mic, err := ParseMIC(f.Value); err == nil {
				m.ReceivedMIC = &mic
			}
		default:
			m.Extensions = append(m.Extensions, f)
		}
	}
	if !haveDisposition {
		return nil, &MDNError{Reason: "no Disposition field"}
	}
	return m, nil
}

// recipientAddress returns the address of an Original-Recipient or Final-Recipient value
// ("rfc822; name"), without the address type and, for a quoted AS2 name, without quotes.
func recipientAddress(v string) string {
	if _, addr, ok := strings.Cut(v, ";"); ok {
		v = addr
	}
	v = strings.TrimSpace(v)
	if id, err := UnquoteID(v); err == nil {
		return id
	}
	return v
}

// parseFieldsLenient reads "Name: value" fields with folding and any line ends, skipping
// blank lines and lines that are not fields, as found in the machine-readable part of MDNs.
func parseFieldsLenient(b []byte) []Field {
	var fields []Field
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i+1], b[i+1:]
		} else {
			b = nil
		}
		content := bytes.TrimRight(line, "\r\n")
		if len(bytes.TrimSpace(content)) == 0 {
			continue
		}
		if content[0] == ' ' || content[0] == '\t' {
			if n := len(fields); n > 0 {
				f := &fields[n-1]
				f.Value = strings.TrimSpace(f.Value + " " + string(bytes.TrimSpace(content)))
				f.Raw = append(f.Raw, line...)
			}
			continue
		}
		colon := bytes.IndexByte(content, ':')
		if colon <= 0 {
			continue
		}
		name := string(bytes.TrimSpace(content[:colon]))
		if !validFieldName(name) {
			continue
		}
		fields = append(fields, Field{
			Name:  name,
			Value: string(bytes.TrimSpace(content[colon+1:])),
			Raw:   append([]byte(nil), line...),
		})
	}
	return fields
}

// Match checks that mdn answers the message with Message-ID originalMessageID positively
// and, when expectedMIC is not nil, with that MIC. Pass expectedMIC only when the MDN must
// carry one: a signed receipt was requested (RFC 4130 §7.3.1); unsigned MDNs often have none.
//
// The errors, in the order checked:
//   - *MDNError: the MDN names another Original-Message-ID, or its Received-Content-MIC
//     cannot be read (an MDN without Original-Message-ID is accepted: some products omit it);
//   - *DispositionError: the disposition is not positive, or Failure or Error fields are
//     present;
//   - *MICMismatchError: the MIC is missing, of another algorithm, or different.
func Match(mdn *MDN, originalMessageID string, expectedMIC *MIC) error {
	if mdn == nil {
		return &MDNError{Reason: "no MDN"}
	}
	if mdn.OriginalMessageID != "" && NormalizeMessageID(mdn.OriginalMessageID) != NormalizeMessageID(originalMessageID) {
		return &MDNError{Reason: fmt.Sprintf("the MDN answers message %s, not %s", mdn.OriginalMessageID, originalMessageID)}
	}
	if !mdn.Positive() {
		return &DispositionError{Disposition: mdn.Disposition, MDN: mdn}
	}
	if expectedMIC == nil {
		return nil
	}
	if mdn.ReceivedMIC == nil {
		if mdn.rawMIC != "" {
			_, err := ParseMIC(mdn.rawMIC)
			return &MDNError{Reason: "unreadable Received-Content-MIC", Err: err}
		}
		return &MICMismatchError{Want: *expectedMIC}
	}
	if !mdn.ReceivedMIC.Equal(*expectedMIC) {
		return &MICMismatchError{Want: *expectedMIC, Got: *mdn.ReceivedMIC}
	}
	return nil
}
