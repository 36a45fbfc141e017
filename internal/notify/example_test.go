package notify_test

import (
	"io"
	"net/http"
	"os"
	"time"

	"github.com/as2gate/as2gate/internal/notify"
)

// A receiver of the gateway's webhook checks each request before trusting it.
func ExampleVerify() {
	secret := []byte(os.Getenv("AS2GATE_WEBHOOK_SECRET"))
	http.HandleFunc("POST /as2gate-events", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "cannot read the body", http.StatusBadRequest)
			return
		}
		if err := notify.Verify(secret, r.Header, body, time.Now(), 5*time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized) // not retried by the gateway
			return
		}
		// Drop r.Header.Get(notify.HeaderDelivery) if it was processed before, then act on
		// the event, e.g. open a ticket.
		w.WriteHeader(http.StatusNoContent)
	})
}
