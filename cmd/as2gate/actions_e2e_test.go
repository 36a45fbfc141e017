package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/as2gate/as2gate/internal/store"
)

// action posts an operator's action on message id and returns the answer.
func (n *node) action(id int64, name, body string) (int, messageView) {
	n.t.Helper()
	var m messageView
	code := n.api("POST", fmt.Sprintf("/api/v1/messages/%d/%s", id, name), strings.NewReader(body), "application/json", &m)
	return code, m
}

// inboxFiles lists the files the node delivered from partner.
func (n *node) inboxFiles(partner string) []string {
	n.t.Helper()
	entries, err := os.ReadDir(n.cfg.Inbox(partner))
	if err != nil {
		n.t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

var actionsAgreement = agreement{sign: "sha256", encrypt: "aes256-cbc", keyTransport: "rsa-pkcs1v15", compress: "none", mdn: "sync", mdnSigned: true}

// A message to a partner URL nobody listens on is stopped by the operator, the URL is
// corrected, and a retry delivers it.
func TestActionsStopFixRetry(t *testing.T) {
	t.Parallel()
	A, B := startPair(t, actionsAgreement)
	good := A.cfg.Partner("GW-B").URL
	A.cfg.Partner("GW-B").URL = "http://127.0.0.1:1/as2"
	files := map[string][]byte{"po-850.edi": []byte("ISA*00*          *00*          *ZZ*GWA*ZZ*GWB~\nIEA*1*000000001~\n")}
	s := A.submit("GW-B", files)

	// Stop it once an attempt has failed; while the worker holds it the stop is refused.
	deadline := time.Now().Add(20 * time.Second)
	for {
		var m messageView
		A.api("GET", fmt.Sprintf("/api/v1/messages/%d", s.ID), nil, "", &m)
		if m.State == "failed" {
			t.Fatalf("the message failed before it could be stopped: %+v", m.Attempts)
		}
		if len(m.Attempts) > 0 {
			code, stopped := A.action(s.ID, "stop", "")
			if code == http.StatusOK {
				if stopped.State != "failed" || len(stopped.Attempts) != len(m.Attempts) {
					t.Fatalf("stopped: %s with %d attempts, want failed with %d", stopped.State, len(stopped.Attempts), len(m.Attempts))
				}
				break
			}
			if code != http.StatusConflict {
				t.Fatalf("stop: HTTP %d", code)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no attempt was recorded: %+v", m)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, _ := A.action(s.ID, "stop", ""); code != http.StatusConflict {
		t.Errorf("stopping a stopped message: HTTP %d, want 409", code)
	}

	A.cfg.Partner("GW-B").URL = good
	code, retried := A.action(s.ID, "retry", "")
	if code != http.StatusOK || retried.State != "queued" || retried.MessageID != s.MessageID {
		t.Fatalf("retry: HTTP %d, %+v", code, retried)
	}
	if sent := A.await(s.ID, "sent", "failed"); sent.State != "sent" || sent.MDN == nil || !sent.MDN.MICOK {
		t.Fatalf("after the retry: %s, MDN %+v, attempts %+v", sent.State, sent.MDN, sent.Attempts)
	}
	if got := B.received(s.MessageID); len(got.Files) != 1 || got.Files[0].Name != "po-850.edi" {
		t.Fatalf("GW-B received %+v", got)
	}
}

// A replayed message reaches the partner as a duplicate of the one it has, delivered once;
// a resent one is a new message, delivered again under the next free name.
func TestActionsReplayAndResend(t *testing.T) {
	t.Parallel()
	A, B := startPair(t, actionsAgreement)
	content := []byte("ISA*00*          *00*          *ZZ*GWA*ZZ*GWB~\nIEA*1*000000002~\n")
	s := A.submit("GW-B", map[string][]byte{"po-850.edi": content})
	if sent := A.await(s.ID, "sent", "failed"); sent.State != "sent" {
		t.Fatalf("first send: %s, attempts %+v", sent.State, sent.Attempts)
	}
	first := B.received(s.MessageID)

	code, replayed := A.action(s.ID, "replay", "")
	if code != http.StatusOK || replayed.State != "queued" || replayed.MessageID != s.MessageID || replayed.MDN != nil {
		t.Fatalf("replay: HTTP %d, %+v", code, replayed)
	}
	if again := A.await(s.ID, "sent", "failed"); again.State != "sent" || again.MDN == nil || !again.MDN.MICOK {
		t.Fatalf("after the replay: %s, MDN %+v, attempts %+v", again.State, again.MDN, again.Attempts)
	}
	evs, err := B.gw.store.Events(t.Context(), "GW-A", store.Inbound, 50, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(evs, func(ev *store.Event) bool { return ev.Type == "duplicate" && ev.MessageRow == first.ID }) {
		t.Errorf("GW-B recorded no duplicate of message %d", first.ID)
	}
	if names := B.inboxFiles("GW-A"); !slices.Equal(names, []string{"po-850.edi"}) {
		t.Errorf("GW-B's inbox after the replay: %v, want the file once", names)
	}

	code, resent := A.action(s.ID, "resend", "")
	if code != http.StatusAccepted || resent.ID == s.ID || resent.MessageID == s.MessageID || resent.State != "queued" {
		t.Fatalf("resend: HTTP %d, %+v", code, resent)
	}
	if sent := A.await(resent.ID, "sent", "failed"); sent.State != "sent" {
		t.Fatalf("resent message: %s, attempts %+v", sent.State, sent.Attempts)
	}
	if got := B.received(resent.MessageID); got.ID == first.ID || len(got.Files) != 1 {
		t.Fatalf("GW-B received %+v", got)
	}
	// Delivery may follow the MDN: wait for the second file.
	deadline := time.Now().Add(20 * time.Second)
	for !slices.Equal(B.inboxFiles("GW-A"), []string{"po-850 (2).edi", "po-850.edi"}) {
		if time.Now().After(deadline) {
			t.Fatalf("GW-B's inbox after the resend: %v", B.inboxFiles("GW-A"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if b, err := os.ReadFile(filepath.Join(B.cfg.Inbox("GW-A"), "po-850 (2).edi")); err != nil || !bytes.Equal(b, content) {
		t.Errorf("the resent file: %q, %v", b, err)
	}
}
