package outbound

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/as2gate/as2gate/as2"
	"github.com/as2gate/as2gate/internal/store"
)

// Codes returns every failure code with a constant, transient first, then incomplete, then
// permanent. HTTP statuses without a constant of their own also occur, as "http_" + status;
// Describe knows them all.
func Codes() []string {
	return []string{
		CodeConnectRefused, CodeConnectTimeout, CodeConnectUnreachable, CodeConnectReset,
		CodeDNSTemporary, CodeHTTP408, CodeHTTP429, CodeHTTP500, CodeHTTP502, CodeHTTP503,
		CodeHTTP504, CodeUnknownNotSent,

		CodeReadTimeout, CodeConnectionReset, CodeConnectionClosed, CodeBrokenPipe,
		CodeMDNMissing, CodeMDNUnreadable, CodeAsyncMDNTimeout, CodeUnknown,

		CodeDNSNotFound, CodeTLSUntrusted, CodeTLSHostname, CodeTLSProtocol,
		CodeTLSClientCertRequired, CodeHTTP301, CodeHTTP302, CodeHTTP303, CodeHTTP307,
		CodeHTTP308, CodeHTTP400, CodeHTTP401, CodeHTTP403, CodeHTTP404, CodeHTTP413,
		CodeHTTP422, CodeMDNNegative, CodeMDNUnsigned, CodeMDNSignatureInvalid,
		CodeMICMismatch, CodeConfig,
	}
}

// Describe returns the class of a failure code and its corrective action in general terms
// (Classify's Failure.Action names the facts of one attempt: host, status, Location). It
// returns empty strings for a code it does not know.
func Describe(code string) (class, action string) {
	class = classOf(code)
	if class == "" {
		return "", ""
	}
	return class, actionText(code, facts{})
}

func classOf(code string) string {
	switch code {
	case CodeConnectRefused, CodeConnectTimeout, CodeConnectUnreachable, CodeConnectReset,
		CodeDNSTemporary, CodeUnknownNotSent:
		return store.ClassTransient
	case CodeReadTimeout, CodeConnectionReset, CodeConnectionClosed, CodeBrokenPipe,
		CodeMDNMissing, CodeMDNUnreadable, CodeAsyncMDNTimeout, CodeUnknown:
		return store.ClassIncomplete
	case CodeDNSNotFound, CodeTLSUntrusted, CodeTLSHostname, CodeTLSProtocol,
		CodeTLSClientCertRequired, CodeMDNNegative, CodeMDNUnsigned, CodeMDNSignatureInvalid,
		CodeMICMismatch, CodeConfig:
		return store.ClassPermanent
	}
	status, ok := httpStatusOf(code)
	switch {
	case !ok:
		return ""
	case status == 408, status == 425, status == 429, status >= 500:
		// The server timed out waiting, asked us to wait, or failed: the request was not
		// processed and may be sent again.
		return store.ClassTransient
	default:
		return store.ClassPermanent
	}
}

// httpStatusOf reads the status of an "http_NNN" code, 300 to 599.
func httpStatusOf(code string) (int, bool) {
	s, ok := strings.CutPrefix(code, "http_")
	if !ok || len(s) != 3 {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 300 || n > 599 {
		return 0, false
	}
	return n, true
}

// action is the corrective action of one failure.
func action(code string, x facts) string {
	s := actionText(code, x)
	// The address dialled, or the partner URL's host when it is an address itself.
	for _, hp := range []string{x.addr, x.host} {
		if ap, err := netip.ParseAddrPort(hp); err == nil {
			x.private = PrivateAddressHint(ap.Addr())
			break
		}
	}
	if x.private != "" {
		switch code {
		case CodeConnectRefused, CodeConnectTimeout, CodeConnectUnreachable:
			s += " Note: " + x.private + "."
		}
	}
	return s
}

// Phrases shared by several actions.
const (
	safeToRetry = "Nothing of the message reached the partner, so sending it again is safe; retries follow the partner's failed policy."
	mayHoldIt   = "The partner may have received the message. Before it is sent again, ask the partner whether they have it (give them the Message-ID). A resend uses the same Message-ID so that their system can recognise a duplicate; it happens automatically only if the partner's incomplete policy is enabled."
	retriesGoOn = "Retries follow the partner's failed policy."
)

func actionText(code string, x facts) string {
	to := ""
	if x.host != "" {
		to = " to " + x.host
	}
	if x.addr != "" {
		to += " (" + x.addr + ")"
	}
	server := "the partner's server"
	if x.host != "" {
		server += " at " + x.host
	}
	Server := "The" + strings.TrimPrefix(server, "the")
	switch code {
	case CodeConnectRefused:
		return "Nothing accepted the connection" + to + ". Check the host and port of the partner URL and ask the partner whether their AS2 server is running; if their firewall admits only known source addresses, give them the address this gateway connects from. " + safeToRetry
	case CodeConnectTimeout:
		return "The connection" + to + ", or its TLS handshake, was not answered within the connect timeout. Usually a firewall drops our packets without a word (the partner has not allow-listed this gateway's outbound address, or our own firewall blocks the port), or the host is down. Check the partner URL and ask the partner to allow-list our address. " + safeToRetry
	case CodeConnectUnreachable:
		return "There is no network route" + to + ". Check the partner URL and this machine's network (routes, VPN, proxy). " + safeToRetry
	case CodeConnectReset:
		return "The connection" + to + " was cut before any of the message was written, most often during the TLS handshake: a firewall, proxy or load balancer in between drops it, or the server rejects our TLS settings without saying why. " + safeToRetry + " If it persists, compare TLS versions and the client certificate with the partner."
	case CodeDNSTemporary:
		return "The name " + hostOnly(x.host) + " could not be looked up just now: the DNS server failed or did not answer. " + retriesGoOn + " If it persists, check this machine's DNS configuration."
	case CodeDNSNotFound:
		h, lookup := hostOnly(x.host), "the host"
		if x.host != "" {
			lookup = h
		}
		return "The name " + h + " does not exist in DNS as this gateway sees it. Check the host name in the partner URL for typos. A name from the partner's internal network resolves only there, often to a private address (10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16) that cannot be reached over the internet: ask the partner for their public AS2 URL, or for a VPN. Compare with a lookup of your own (nslookup " + lookup + ")."
	case CodeTLSUntrusted:
		cert := "The partner's HTTPS certificate"
		if x.host != "" {
			cert += " at " + x.host
		}
		detail := x.certDetail
		if detail == "" {
			detail = "is not trusted here"
		}
		return cert + " " + detail + ". Get the partner's TLS certificate, or the CA that issued it, and set it as the partner's tls.ca; or ask the partner to use a certificate from a public CA."
	case CodeTLSHostname:
		names := x.certNames
		if names == "" {
			names = "other names"
		}
		h := "the host of the partner URL"
		if x.host != "" {
			h = hostOnly(x.host)
		}
		return "The partner's HTTPS certificate is issued for " + names + ", not for " + h + " as the partner URL says. Use a host name the certificate names in the partner URL, or ask the partner for a certificate that covers " + h + "."
	case CodeTLSProtocol:
		if x.recordError {
			return Server + " did not answer in TLS: the URL says https but that port speaks plain HTTP (or something else). Check the scheme and port of the partner URL."
		}
		s := "The TLS handshake with " + server + " failed"
		if x.alert != "" {
			s += " (the server sent " + strconv.Quote(x.alert) + ")"
		}
		s += ": we share no TLS version or cipher suite with it. This gateway offers TLS 1.2 and 1.3; ask the partner which versions and ciphers their server accepts."
		if x.alertCode == alertHandshakeFailure || x.alertCode == 0 {
			s += " A TLS 1.2 server that wants a client certificate ends the handshake the same way when none is sent: if the partner requires one, configure the station's tls_cert and tls_key."
		}
		return s
	case CodeTLSClientCertRequired:
		s := Server + " requires a TLS client certificate and did not accept ours"
		if x.alert != "" {
			s += " (the server sent " + strconv.Quote(x.alert) + ")"
		}
		return s + ". Configure a TLS key pair for the station (tls_cert and tls_key) and give its certificate to the partner to trust; if one is configured, check that the partner trusts the current one and that it has not expired."
	case CodeReadTimeout:
		return "The message was sent to " + server + " but no complete answer came within the transmission timeout. " + mayHoldIt + " If the partner is slow with large messages, raise the partner's transmission timeout."
	case CodeConnectionReset:
		return "The connection" + to + " was reset after the message had started to go out. " + mayHoldIt
	case CodeConnectionClosed:
		return Server + " closed the connection without an HTTP answer after the message had started to go out. " + mayHoldIt
	case CodeBrokenPipe:
		return Server + " closed the connection while the message was still being written. " + mayHoldIt
	case CodeMDNMissing:
		return "The partner answered with success but without the synchronous MDN that was requested. It probably holds the message, and we have no receipt for it. Check with the partner that they return synchronous MDNs, or change the partner's mdn setting to what they support (async or none)."
	case CodeMDNUnreadable:
		s := "The partner answered, but its MDN could not be used"
		if x.detail != "" {
			s += ": " + x.detail
		}
		return s + ". The partner probably holds the message; we have no valid receipt for it. Send the partner the MDN (kept with the attempt) and ask them to check their MDN settings. " + mayHoldIt
	case CodeAsyncMDNTimeout:
		return "No asynchronous MDN arrived before the partner's async_mdn deadline. The message was delivered but is not acknowledged. Check that the partner can reach this gateway's public_url (the Receipt-Delivery-Option of the message) and look for their MDN in the partner's logs. " + mayHoldIt
	case CodeMDNNegative:
		return negativeMDNAction(x.disposition)
	case CodeMDNUnsigned:
		return "A signed MDN was requested but the partner returned an unsigned one, which proves nothing about receipt. Ask the partner to sign their MDNs; if the agreement is for unsigned receipts, set the partner's mdn_signed to false."
	case CodeMDNSignatureInvalid:
		s := "The MDN's signature did not verify with the partner's certificates"
		if x.detail != "" {
			s += " (" + x.detail + ")"
		}
		return s + ". The partner has probably renewed their signing certificate: get the current one and add it to the partner's certs. The message itself was received and answered."
	case CodeMICMismatch:
		s := "The MDN acknowledges different content than we sent"
		if x.wantMIC != "" {
			got := "no MIC"
			if x.gotMIC != "" {
				got = x.gotMIC
			}
			s += " (we computed " + x.wantMIC + ", the MDN returned " + got + ")"
		}
		return s + ". The message was altered on the way, or the partner computes the MIC over different bytes or with another algorithm. Receipt is not proven: compare the signing and MIC settings with the partner and send the message again when resolved."
	case CodeConfig:
		s := "The message cannot be sent as configured"
		if x.detail != "" {
			s += ": " + x.detail
		}
		return s + ". Correct the station or partner configuration (certificates, keys, algorithms, URL) and retry the message from Failed."
	case CodeUnknown:
		return "An unexpected error occurred after the request may have reached " + server + ". " + mayHoldIt + " If it repeats, report the error text."
	case CodeUnknownNotSent:
		return "An unexpected error occurred before any of the message was sent to " + server + ". " + safeToRetry + " If it repeats, report the error text."
	}
	if status, ok := httpStatusOf(code); ok {
		return httpAction(status, x)
	}
	return ""
}

func httpAction(status int, x facts) string {
	st := x.status
	if st == "" {
		st = strconv.Itoa(status)
		if t := http.StatusText(status); t != "" {
			st += " " + t
		}
	}
	said := "The partner answered HTTP " + st
	body := ""
	if x.excerpt != "" {
		body = " The response says: " + strconv.Quote(x.excerpt) + "."
	}
	wait := ""
	if x.retryAfter > 0 {
		wait = " The partner asked to wait " + x.retryAfter.Round(time.Second).String() + " first; the next retry is no earlier."
	}
	switch {
	case status >= 300 && status < 400:
		to := "another address"
		if x.location != "" {
			to = x.location
		}
		return said + ", redirecting to " + to + ". The partner URL is outdated or slightly wrong (http for https, a missing or extra slash); AS2 senders do not follow redirects. Confirm the address with the partner and correct the partner URL."
	case status == 400:
		return said + ": their server found the request malformed (AS2 headers or MIME structure)." + body + " Ask the partner which header or part they reject; give them the Message-ID to find it in their log."
	case status == 401:
		s := said + ": their server requires HTTP authentication"
		if x.realm != "" {
			s += " (" + x.realm + ")"
		}
		return s + "." + body + " Configure the partner's auth (basic user and password, or a bearer token) as the partner specifies; if it is configured, the credentials are wrong or expired."
	case status == 403:
		return said + ": their server refuses us." + body + " Often a firewall or the AS2 server rejects this gateway's address, or the AS2-From/AS2-To pair is not set up on their side. Ask the partner to allow-list our outbound address and to check the AS2 identifiers they have for us."
	case status == 404:
		return said + ": there is no AS2 endpoint at that path." + body + " Check the path of the partner URL against what the partner gave, character for character."
	case status == 408:
		return said + ": their server gave up waiting for our request." + body + " " + retriesGoOn
	case status == 413:
		return said + ": the message is larger than their server accepts." + body + " Ask the partner for their size limit; compression (the partner's compress setting) may bring it under."
	case status == 422:
		return said + ": their server understood the request but refused its content, typically AS2-From or AS2-To it does not know." + body + " Check that the AS2 identifiers match the partner's configuration exactly, case included."
	case status == 429:
		return said + ": they are limiting how fast we send." + wait + " " + retriesGoOn
	case status == 500:
		return said + ": their server failed while handling the message." + body + " " + retriesGoOn + " If it persists, ask the partner to look in their server log for the Message-ID: a generic 500 often hides a configuration problem on their side."
	case status == 502 || status == 504:
		return said + ": a proxy or gateway in front of their AS2 server could not reach it in time. This usually passes. " + retriesGoOn
	case status == 503:
		return said + ": their AS2 service is unavailable for now, typically during maintenance." + wait + " " + retriesGoOn
	case status >= 500:
		return said + ": a failure on their side." + body + wait + " " + retriesGoOn + " If it persists, ask the partner to check their server log."
	case status == 425:
		return said + "." + wait + " " + retriesGoOn
	default:
		return said + ": their server refuses the request." + body + " This will not change by sending again: ask the partner what the status means for their server."
	}
}

// negativeMDNAction explains a negative disposition by its modifier's description.
func negativeMDNAction(d as2.Disposition) string {
	s := "The partner received the message and refused it"
	if d.Type != "" {
		disp := d.Raw
		if disp == "" {
			disp = d.String()
		}
		s += " (Disposition: " + strings.TrimSpace(disp) + ")"
	}
	s += ". "
	switch strings.ToLower(strings.TrimSpace(d.Description)) {
	case as2.DecryptionFailed:
		return s + "They could not decrypt it: check that we encrypt with their current certificate (the partner's certs) and with an algorithm they support, e.g. aes256-cbc with rsa-pkcs1v15."
	case as2.AuthenticationFailed, as2.IntegrityCheckFailed:
		return s + "Our signature did not verify on their side: give them our current signing certificate and check that they support our signing algorithm."
	case as2.InsufficientMessageSecurity:
		return s + "They require stronger protection than we sent (signing, encryption or both): align the partner's sign and encrypt settings with the agreement."
	case as2.DecompressionFailed:
		return s + "They could not decompress it: set the partner's compress to none, or agree on compression before or after signing."
	case as2.UnknownTradingRelationship:
		return s + "They do not know the AS2-From/AS2-To pair: check both identifiers with the partner."
	case strings.ToLower(as2.UnsupportedMICAlgorithms):
		return s + "They do not support the MIC algorithm we asked for: choose another signing or MIC algorithm for this partner."
	case strings.ToLower(as2.UnsupportedFormat):
		return s + "They do not accept the message's format: check the content type and the MDN options we ask for."
	case as2.UnexpectedProcessingError:
		return s + "Their system failed while processing it: ask the partner to look in their log for the Message-ID."
	case as2.DuplicateDocument:
		return s + "They already have this document: check with the partner before sending it again."
	}
	return s + "Ask the partner what the disposition means for their system; sending the same message again will be refused the same way."
}

// hostOnly drops the port of a host:port; an empty host becomes a neutral phrase.
func hostOnly(hostport string) string {
	if hostport == "" {
		return "of the partner URL"
	}
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}
