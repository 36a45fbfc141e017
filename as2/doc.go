// Package as2 implements the AS2 protocol (RFC 4130, "MIME-Based Secure Peer-to-Peer Business
// Data Interchange Using HTTP") on top of package cms: the AS2 headers, the raw MIME handling
// that signatures need, the message integrity check (MIC), and message disposition
// notifications (MDNs).
//
// Implemented, with the sections they come from:
//
//   - RFC 4130 §5.3.3 and RFC 5322 §3.6.4: Message-ID generation and matching
//     (NewMessageID, NormalizeMessageID, ValidateMessageID).
//   - RFC 4130 §6.1, §6.2: AS2-Version, AS2-From and AS2-To, quoted when an AS2 name holds a
//     space or a special character (QuoteID, UnquoteID, ValidateID).
//   - RFC 4130 §7.3 and RFC 3798 §2.2: Disposition-Notification-Options
//     (ParseDispositionOptions), with the MIC algorithm names of RFC 5751 §3.4.3.2 (MICAlg).
//   - RFC 4130 §7.3.1 and RFC 5402 §4: what the MIC covers for each combination of signing,
//     encryption and compression (MICScopeFor), and the Received-Content-MIC value (MIC).
//   - RFC 4130 §7.4, §7.5, RFC 3798 §3 and §7, RFC 8098, RFC 3462: MDNs as
//     multipart/report; report-type=disposition-notification (BuildMDN, ParseMDN,
//     ParseDisposition, Match).
//   - RFC 2045 §6, RFC 2046 §5.1.1, RFC 1847 §2.1: MIME entities parsed with their exact bytes
//     kept, multipart bodies split at delimiters in memory (SplitMultipart) or as a stream
//     (NewMultipartReader), content transfer encodings decoded as an explicit step, and the
//     canonical CRLF form that signatures and MICs are computed over.
//   - RFC 6362 and RFC 6017: several attachments in one message (multipart/related) and the
//     EDIINT-Features header that announces it.
//   - RFC 2183 and RFC 2231: file names from Content-Disposition.
//
// Signatures are verified over the bytes exactly as received, so nothing here rebuilds a MIME
// entity from parsed headers: Entity and Part keep the raw bytes beside the parsed view.
// Real products bend the RFCs; where this package accepts such input, a QUIRK comment says
// which product does what.
//
// The package reports what happened as typed errors (HTTPError, DispositionError,
// MICMismatchError, MDNError, SignatureError, TransportError, UnpackError, ErrMDNMissing),
// read with errors.As; it never logs and never decides on retries.
package as2
