package archive

import (
	"net/http"
	"strings"
)

// Redacted is the value shown for a header whose value is withheld.
const Redacted = "(withheld: set by the configuration)"

// protocolHeaders are the HTTP headers of AS2 and MIME (RFC 4130, RFC 3798/8098, RFC 2045)
// and the ordinary transport headers: their values are evidence and never secret.
var protocolHeaders = map[string]bool{
	"As2-Version": true, "As2-From": true, "As2-To": true, "Message-Id": true, "Original-Message-Id": true,
	"Subject": true, "Date": true, "From": true, "Mime-Version": true, "Content-Type": true,
	"Content-Transfer-Encoding": true, "Content-Disposition": true, "Content-Length": true,
	"Content-Description": true, "Content-Id": true, "Disposition-Notification-To": true,
	"Disposition-Notification-Options": true, "Receipt-Delivery-Option": true, "Ediint-Features": true,
	"Recipient-Address": true, "User-Agent": true, "Server": true, "Host": true, "Connection": true,
	"Transfer-Encoding": true, "Accept-Encoding": true, "Expect": true, "Content-Encoding": true,
}

// PublicHeader returns a copy of h fit to show or hand out: the protocol headers as they
// are, any other header (a partner's or a send profile's custom headers, which may carry
// API keys or tokens, and Authorization) with its value withheld but its name kept, so the
// record still says that it was sent.
func PublicHeader(h http.Header) http.Header {
	out := make(http.Header, len(h))
	for name, values := range h {
		if protocolHeaders[http.CanonicalHeaderKey(name)] || strings.HasPrefix(strings.ToLower(name), "as2-") {
			out[name] = append([]string(nil), values...)
			continue
		}
		out[name] = []string{Redacted}
	}
	return out
}
