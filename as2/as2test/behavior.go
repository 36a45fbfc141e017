package as2test

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
)

// A Behavior decides what a Partner does with a request: how much of it to read and how
// (or whether) to answer. Behaviours are values made by the functions of this package;
// Handler is the way to write a new answer. One Behavior may serve many requests at once.
type Behavior interface {
	serve(x *exchange)
}

type behaviorFunc func(x *exchange)

func (f behaviorFunc) serve(x *exchange) { f(x) }

var defaultBehavior = Respond(http.StatusOK, nil, nil)

// Respond reads the whole request, then answers with the given status, header and body,
// sent with a Content-Length. Use it for every HTTP-level failure: 500, 503 with
// Retry-After, 401, 404, 413, 422, 301 with Location, and so on. A status outside 200–999
// is a fault of the test: the partner answers 500 and fails the test.
func Respond(status int, header http.Header, body []byte) Behavior {
	header = header.Clone()
	body = bytes.Clone(body)
	return behaviorFunc(func(x *exchange) {
		x.readBody(-1)
		x.record()
		if status < 200 || status > 999 {
			x.p.errorf("Respond: status %d is not a final HTTP status", status)
			http.Error(x.w, "as2test: bad status", http.StatusInternalServerError)
			return
		}
		h := x.w.Header()
		for k, v := range header {
			h[k] = append([]string(nil), v...)
		}
		h.Set("Content-Length", strconv.Itoa(len(body)))
		x.w.WriteHeader(status)
		// A write error means the client left; the exchange is over either way.
		_, _ = x.w.Write(body)
	})
}

// Handler reads the whole request, records it, then calls f with the body. r.Body is reset
// to read the same bytes again, so f may hand r to another http.Handler (an AS2 receiver,
// say). This is how a test answers with an MDN of its own making: signed or not, negative,
// garbled, with a wrong MIC, chunked or with Content-Length. r's context ends when the
// client goes away or the partner closes, so f may block on it to stall after writing part
// of its answer.
func Handler(f func(w http.ResponseWriter, r *http.Request, body []byte)) Behavior {
	return behaviorFunc(func(x *exchange) {
		x.readBody(-1)
		x.record()
		x.r.Body = io.NopCloser(bytes.NewReader(x.req.Body))
		f(x.w, x.r, x.req.Body)
	})
}

// Stall reads the whole request and then never answers: the client waits until its own
// timeout, or until it gives up, which the partner notices because it is reading the idle
// connection. When the partner closes, a stalled connection is dropped without an answer.
// To a sender this is a read timeout after the message was delivered: the partner may hold
// the message.
func Stall() Behavior {
	return behaviorFunc(func(x *exchange) {
		x.readBody(-1)
		x.record()
		x.hold()
		x.drop(false)
	})
}

// StallBeforeRead accepts the request header and reads none of the body. The request is
// recorded with an empty body. The client's body stays in the socket buffers, or blocks
// the client's writes when larger. Reading nothing, the partner cannot notice a client that
// gives up; the connection is dropped when the partner closes.
func StallBeforeRead() Behavior {
	return behaviorFunc(func(x *exchange) {
		x.record()
		x.hold()
		x.drop(false)
	})
}

// ResetMidBody reads n bytes of the body (fewer if the body is shorter) and then aborts the
// connection with a TCP RST. The client sees ECONNRESET (or EPIPE when it was still writing
// and the reset had already been reported on an earlier write). The recorded request holds
// the n bytes read.
func ResetMidBody(n int) Behavior {
	return behaviorFunc(func(x *exchange) {
		x.readBody(int64(max(n, 0)))
		x.record()
		x.drop(true)
	})
}

// CloseAfterBody reads the whole request and closes the connection without answering
// (a FIN, no RST): the client reads end-of-file where the response should be.
func CloseAfterBody() Behavior {
	return behaviorFunc(func(x *exchange) {
		x.readBody(-1)
		x.record()
		x.drop(false)
	})
}

// Garbage reads the whole request, writes raw (which should not be an HTTP response: that
// is the point) on the connection, inside TLS when the partner uses it, and closes it.
func Garbage(raw []byte) Behavior {
	raw = bytes.Clone(raw)
	return behaviorFunc(func(x *exchange) {
		x.readBody(-1)
		x.record()
		conn := x.hijack()
		if conn == nil {
			return
		}
		// Write and close errors mean the client left first; it has its answer either way.
		_, _ = conn.Write(raw)
		_ = conn.Close()
	})
}

// Sequence serves the n-th request it sees with bs[n], and every request after the last
// with the last behaviour: Sequence(Respond(503, ...), Respond(503, ...), ok) fails twice,
// then succeeds. Requests served concurrently take their turns in the order they reach the
// partner's handler. An empty Sequence is the default 200 OK.
func Sequence(bs ...Behavior) Behavior {
	bs = append([]Behavior(nil), bs...)
	var next atomic.Int64
	return behaviorFunc(func(x *exchange) {
		if len(bs) == 0 {
			defaultBehavior.serve(x)
			return
		}
		i := min(next.Add(1)-1, int64(len(bs)-1))
		b := bs[i]
		if b == nil {
			b = defaultBehavior
		}
		b.serve(x)
	})
}
