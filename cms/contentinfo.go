package cms

import (
	"bufio"
	"bytes"
	"encoding/asn1"
	"fmt"
	"io"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// ContentType is the type of a CMS ContentInfo.
type ContentType int

// The content types the package reads and writes.
const (
	TypeUnknown ContentType = iota
	TypeData
	TypeSignedData
	TypeEnvelopedData
	TypeAuthEnvelopedData
	TypeCompressedData
)

var contentTypeNames = map[ContentType]string{
	TypeUnknown:           "unknown",
	TypeData:              "data",
	TypeSignedData:        "signed-data",
	TypeEnvelopedData:     "enveloped-data",
	TypeAuthEnvelopedData: "authEnveloped-data",
	TypeCompressedData:    "compressed-data",
}

// String returns the S/MIME smime-type spelling of t.
func (t ContentType) String() string { return contentTypeNames[t] }

func contentTypeOf(oid asn1.ObjectIdentifier) ContentType {
	switch {
	case oid.Equal(oidData):
		return TypeData
	case oid.Equal(oidSignedData):
		return TypeSignedData
	case oid.Equal(oidEnvelopedData):
		return TypeEnvelopedData
	case oid.Equal(oidAuthEnvelopedData):
		return TypeAuthEnvelopedData
	case oid.Equal(oidCompressedData):
		return TypeCompressedData
	}
	return TypeUnknown
}

// Identify reads the start of a ContentInfo (BER or DER) and reports its content type. It
// needs only the first few dozen bytes, so a caller may pass a prefix of a large message.
func Identify(prefix []byte) (ContentType, error) {
	// A buffer the size of the prefix: newDecoder's default is made for whole messages.
	d := newDecoder(bufio.NewReaderSize(bytes.NewReader(prefix), len(prefix)), 0)
	oid, err := d.contentInfoStart()
	if err != nil {
		return TypeUnknown, err
	}
	if t := contentTypeOf(oid); t != TypeUnknown {
		return t, nil
	}
	return TypeUnknown, fmt.Errorf("cms: unknown content type %s", oid)
}

// contentInfoStart reads ContentInfo ::= SEQUENCE { contentType, [0] EXPLICIT content } up to
// the start of content, entering both the SEQUENCE and the [0].
func (d *decoder) contentInfoStart() (asn1.ObjectIdentifier, error) {
	if err := d.enter(tagSequence); err != nil {
		return nil, err
	}
	oid, err := d.oid()
	if err != nil {
		return nil, err
	}
	if err := d.enter(classContext | bitCompound | 0); err != nil {
		return nil, err
	}
	return oid, nil
}

// oid reads an OBJECT IDENTIFIER.
func (d *decoder) oid() (asn1.ObjectIdentifier, error) {
	der, tag, err := d.element(256)
	if err != nil {
		return nil, err
	}
	if tag != tagOID {
		return nil, d.syntax(fmt.Sprintf("expected an OBJECT IDENTIFIER, found tag 0x%02x", tag))
	}
	var oid asn1.ObjectIdentifier
	s := cryptobyte.String(der)
	if !s.ReadASN1ObjectIdentifier(&oid) {
		return nil, d.syntax("invalid OBJECT IDENTIFIER")
	}
	return oid, nil
}

// parseContentInfo unwraps a DER ContentInfo held in memory, returning its type and the
// DER of its content.
func parseContentInfo(der []byte) (asn1.ObjectIdentifier, cryptobyte.String, error) {
	s := cryptobyte.String(der)
	var ci, content cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !s.ReadASN1(&ci, cbasn1.SEQUENCE) || !ci.ReadASN1ObjectIdentifier(&oid) {
		return nil, nil, &SyntaxError{0, "not a ContentInfo"}
	}
	if !ci.ReadASN1(&content, cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return nil, nil, &SyntaxError{0, "ContentInfo has no content"}
	}
	return oid, content, nil
}

// readAllLimited reads r into memory, failing with ErrTooLarge past max bytes.
func readAllLimited(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, ErrTooLarge
	}
	return b, nil
}

// contentInfo wraps DER content in a ContentInfo.
func contentInfo(oid asn1.ObjectIdentifier, content []byte) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddBytes(content)
		})
	})
	return b.BytesOrPanic()
}
