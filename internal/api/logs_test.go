package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/as2gate/as2gate/internal/store"
)

// queue stores a queued outbound message to partner.
func (f *fixture) queue(t *testing.T, partner, subject, tag string, due time.Time) *store.Message {
	t.Helper()
	m := &store.Message{Direction: store.Outbound, Kind: store.KindMessage, MessageID: fmt.Sprintf("<%s-%d@test>", partner, due.UnixNano()),
		Station: "GW", Partner: partner, Subject: subject, Tag: tag, State: store.StateQueued, NextAttemptAt: due,
		Files: []store.File{{Name: strings.ToLower(subject) + ".edi", ContentType: "application/edi-x12", Size: 1, SHA256: strings.Repeat("b", 64)}}}
	if err := f.store.CreateMessage(t.Context(), m, &store.Event{Type: "submitted", At: due}); err != nil {
		t.Fatal(err)
	}
	return m
}

// fail records a failed attempt on m at at, as the send worker does; m is due again 90
// minutes later.
func (f *fixture) fail(t *testing.T, m *store.Message, at time.Time, class, code string) {
	t.Helper()
	ms, err := f.store.Claim(t.Context(), store.ClaimRequest{Now: at, Owner: "w", Lease: time.Minute, Limit: 1})
	if err != nil || len(ms) != 1 || ms[0].ID != m.ID {
		t.Fatalf("Claim at %v = %v, %v; want message %d", at, ms, err, m.ID)
	}
	o := store.Outcome{State: store.StateQueued, NextAttemptAt: at.Add(90 * time.Minute),
		Attempt: &store.Attempt{At: at, Class: class, Code: code, HTTPStatus: 503, BodyExcerpt: "busy", Error: "no " + code, Action: "wait"},
		Event:   &store.Event{At: at, Type: "attempt_failed", Detail: code}}
	if err := f.store.Finish(t.Context(), m.ID, "w", o); err != nil {
		t.Fatal(err)
	}
}

// list GETs path and returns the items under key, and next_before (0 when absent).
func (f *fixture) list(t *testing.T, path, key string) ([]map[string]any, int64) {
	t.Helper()
	code, out := f.do(t, "GET", path, token, nil, "")
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %v", path, code, out)
	}
	raw, ok := out[key].([]any)
	if !ok {
		t.Fatalf("GET %s: %s is not a list: %v", path, key, out)
	}
	var items []map[string]any
	for _, r := range raw {
		items = append(items, r.(map[string]any))
	}
	next, _ := out["next_before"].(float64)
	return items, int64(next)
}

func field(items []map[string]any, name string) []string {
	var out []string
	for _, it := range items {
		out = append(out, fmt.Sprint(it[name]))
	}
	return out
}

func TestFailures(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	x := f.queue(t, "PARTNERX", "Orders", "", t0)
	f.fail(t, x, t0, store.ClassTransient, "connect_refused")
	y := f.queue(t, "PARTNERY", "Invoices", "", t0.Add(time.Hour))
	f.fail(t, y, t0.Add(time.Hour), store.ClassIncomplete, "read_timeout")
	f.fail(t, x, t0.Add(2*time.Hour), store.ClassPermanent, "http_403")

	rows, next := f.list(t, "/api/v1/failures", "failures")
	if got := field(rows, "code"); !slices.Equal(got, []string{"http_403", "read_timeout", "connect_refused"}) || next != 0 {
		t.Fatalf("failure log = %v, next_before %d; want newest first, no next page", got, next)
	}
	r := rows[1]
	want := map[string]any{"id": float64(y.ID), "message_id": y.MessageID, "partner": "PARTNERY", "direction": "out",
		"at": "2026-03-02T11:00:00Z", "class": "incomplete", "code": "read_timeout", "http_status": float64(503),
		"error": "no read_timeout", "action": "wait", "body_excerpt": "busy"}
	for k, v := range want {
		if r[k] != v {
			t.Errorf("row %s = %v, want %v", k, r[k], v)
		}
	}

	tests := []struct {
		name, query string
		want        []string
	}{
		{"partner", "partner=PARTNERX", []string{"http_403", "connect_refused"}},
		{"class", "class=permanent", []string{"http_403"}},
		{"code", "code=connect_refused", []string{"connect_refused"}},
		{"from a time", "from=2026-03-02T11:00:00Z", []string{"http_403", "read_timeout"}},
		{"to a time", "to=2026-03-02T11:00:00Z", []string{"connect_refused"}},
		{"to a date takes the whole day", "to=2026-03-02", []string{"http_403", "read_timeout", "connect_refused"}},
		{"from the next day", "from=2026-03-03", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rows, _ := f.list(t, "/api/v1/failures?"+tc.query, "failures")
			if got := field(rows, "code"); !slices.Equal(got, tc.want) {
				t.Errorf("failures?%s = %v, want %v", tc.query, got, tc.want)
			}
		})
	}

	t.Run("paging", func(t *testing.T) {
		var codes []string
		path := "/api/v1/failures?limit=2"
		for range 3 {
			rows, next := f.list(t, path, "failures")
			codes = append(codes, field(rows, "code")...)
			if next == 0 {
				break
			}
			if next != int64(rows[len(rows)-1]["attempt_id"].(float64)) {
				t.Fatalf("next_before %d is not the last row's attempt_id", next)
			}
			path = fmt.Sprintf("/api/v1/failures?limit=2&before=%d", next)
		}
		if !slices.Equal(codes, []string{"http_403", "read_timeout", "connect_refused"}) {
			t.Errorf("pages = %v, want every failure once, newest first", codes)
		}
	})
}

func TestTimeline(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	x := f.queue(t, "PARTNERX", "Orders", "batch-1", t0)
	f.fail(t, x, t0, store.ClassTransient, "connect_refused")
	f.queue(t, "PARTNERY", "Invoices", "", t0.Add(time.Hour))
	in := &store.Event{At: t0.Add(3 * time.Hour), Direction: store.Inbound, Partner: "PARTNERY", Type: "received"}
	if err := f.store.AddEvent(t.Context(), in); err != nil {
		t.Fatal(err)
	}

	events, next := f.list(t, "/api/v1/timeline", "events")
	if got := field(events, "type"); !slices.Equal(got, []string{"received", "submitted", "attempt_failed", "submitted"}) || next != 0 {
		t.Fatalf("timeline = %v, next_before %d; want newest first", got, next)
	}
	if events[2]["message_row"] != float64(x.ID) || events[2]["detail"] != "connect_refused" || events[2]["tag"] != "batch-1" {
		t.Errorf("attempt event = %v, want message %d, tag batch-1, its code as detail", events[2], x.ID)
	}
	if _, ok := events[0]["message_row"]; ok {
		t.Errorf("an event about no message names one: %v", events[0])
	}

	tests := []struct {
		name, query string
		want        []string // partner of each event
	}{
		{"partner", "partner=PARTNERX", []string{"PARTNERX", "PARTNERX"}},
		{"direction", "direction=in", []string{"PARTNERY"}},
		{"state of the message", "state=queued", []string{"PARTNERY", "PARTNERX", "PARTNERX"}},
		{"tag", "tag=batch-1", []string{"PARTNERX", "PARTNERX"}},
		{"from", "from=2026-03-02T13:00:00Z", []string{"PARTNERY"}},
		{"limit", "limit=1", []string{"PARTNERY"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			events, _ := f.list(t, "/api/v1/timeline?"+tc.query, "events")
			if got := field(events, "partner"); !slices.Equal(got, tc.want) {
				t.Errorf("timeline?%s = %v, want %v", tc.query, got, tc.want)
			}
		})
	}
	events, next = f.list(t, "/api/v1/timeline?limit=3", "events")
	if len(events) != 3 || next != int64(events[2]["id"].(float64)) {
		t.Fatalf("a full page of 3: %d events, next_before %d", len(events), next)
	}
	if events, _ := f.list(t, fmt.Sprintf("/api/v1/timeline?before=%d", next), "events"); len(events) != 1 {
		t.Errorf("the page after: %d events, want 1", len(events))
	}
}

func TestListSearch(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	t0 := time.Now().Add(-time.Minute)
	orders := f.queue(t, "PARTNERX", "Orders", "", t0)
	invoices := f.queue(t, "PARTNERX", "Invoices", "", t0.Add(time.Second))
	created := orders.CreatedAt

	tests := []struct {
		name, query string
		want        []int64
	}{
		{"subject", "q=ORDERS", []int64{orders.ID}},
		{"file name", "q=invoices.edi", []int64{invoices.ID}},
		{"Message-ID", "q=" + url.QueryEscape(orders.MessageID), []int64{orders.ID}},
		{"from", "from=" + created.Add(time.Microsecond).Format(time.RFC3339Nano), []int64{invoices.ID}},
		{"to", "to=" + created.Add(time.Microsecond).Format(time.RFC3339Nano), []int64{orders.ID}},
		{"a window of days", "from=2000-01-01&to=2999-12-31", []int64{invoices.ID, orders.ID}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ms, _ := f.list(t, "/api/v1/messages?"+tc.query, "messages")
			var got []int64
			for _, m := range ms {
				got = append(got, int64(m["id"].(float64)))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("messages?%s = %v, want %v", tc.query, got, tc.want)
			}
		})
	}
	ms, next := f.list(t, "/api/v1/messages?limit=1", "messages")
	if len(ms) != 1 || next != invoices.ID {
		t.Fatalf("a full page: %d messages, next_before %d; want 1 and %d", len(ms), next, invoices.ID)
	}
	if ms, next := f.list(t, fmt.Sprintf("/api/v1/messages?limit=1&before=%d", next), "messages"); len(ms) != 1 || ms[0]["id"] != float64(orders.ID) || next != orders.ID {
		t.Fatalf("the second page: %v, next_before %d", ms, next)
	}
	if ms, next := f.list(t, fmt.Sprintf("/api/v1/messages?limit=1&before=%d", orders.ID), "messages"); len(ms) != 0 || next != 0 {
		t.Fatalf("past the end: %v, next_before %d; want nothing", ms, next)
	}
}

// TestListErrors: every bad parameter is refused with an error that names it.
func TestListErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tests := []struct {
		path, says string
	}{
		{"/api/v1/messages?from=yesterday", "from"},
		{"/api/v1/messages?to=2026-13-01", "to"},
		{"/api/v1/messages?from=2026-03-02&to=2026-03-01", "from 2026-03-02 is not before to"},
		{"/api/v1/messages?before=x", "before"},
		{"/api/v1/failures?limit=501", "limit"},
		{"/api/v1/failures?before=-1", "before"},
		{"/api/v1/failures?class=fatal", "class"},
		{"/api/v1/failures?from=2026-03-02T10:00", "from"},
		{"/api/v1/timeline?direction=up", "direction"},
		{"/api/v1/timeline?state=lost", "state"},
		{"/api/v1/timeline?to=tomorrow", "to"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			code, out := f.do(t, "GET", tc.path, token, nil, "")
			msg, _ := out["error"].(string)
			if code != http.StatusBadRequest || !strings.HasPrefix(msg, tc.says) {
				t.Errorf("%d %q, want 400 starting with %q", code, msg, tc.says)
			}
		})
	}
	for _, path := range []string{"/api/v1/failures", "/api/v1/timeline"} {
		if code, _ := f.do(t, "GET", path, "", nil, ""); code != http.StatusUnauthorized {
			t.Errorf("%s without a token: %d, want 401", path, code)
		}
	}
}

// TestOpenAPI: the served document describes exactly the routes Handler serves, and its
// references and path parameters are whole.
func TestOpenAPI(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	resp, err := http.Get(f.srv.URL + "/api/v1/openapi.json") // no token
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("openapi.json: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var doc struct {
		OpenAPI    string                               `json:"openapi"`
		Paths      map[string]map[string]map[string]any `json:"paths"`
		Components map[string]map[string]any            `json:"components"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("openapi.json does not parse: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi = %q, want 3.x", doc.OpenAPI)
	}

	served := map[string]bool{}
	for _, rt := range New(Config{}).routes() {
		key := rt.method + " " + rt.pattern
		served[key] = true
		op, ok := doc.Paths[rt.pattern][strings.ToLower(rt.method)]
		if !ok {
			t.Errorf("route %s is not documented", key)
			continue
		}
		if _, ok := op["responses"]; !ok {
			t.Errorf("%s documents no responses", key)
		}
	}
	var opParams func(op map[string]any) []any
	opParams = func(op map[string]any) []any { p, _ := op["parameters"].([]any); return p }
	pathVar := regexp.MustCompile(`\{([^}]+)\}`)
	for path, ops := range doc.Paths {
		for method, op := range ops {
			key := strings.ToUpper(method) + " " + path
			if !served[key] {
				t.Errorf("documented %s is not a route", key)
			}
			// Every {name} of the template is a declared path parameter.
			declared := map[string]bool{}
			for _, p := range opParams(op) {
				pm := p.(map[string]any)
				if ref, ok := pm["$ref"].(string); ok {
					pm, _ = doc.Components["parameters"][strings.TrimPrefix(ref, "#/components/parameters/")].(map[string]any)
				}
				if pm["in"] == "path" {
					declared[pm["name"].(string)] = true
				}
			}
			for _, m := range pathVar.FindAllStringSubmatch(path, -1) {
				if !declared[m[1]] {
					t.Errorf("%s does not declare path parameter %s", key, m[1])
				}
			}
		}
	}
	// Every $ref names a component that exists.
	for _, m := range regexp.MustCompile(`"\$ref":\s*"#/components/(\w+)/(\w+)"`).FindAllStringSubmatch(string(body), -1) {
		if _, ok := doc.Components[m[1]][m[2]]; !ok {
			t.Errorf("$ref to missing #/components/%s/%s", m[1], m[2])
		}
	}
	if strings.Count(string(body), `"$ref"`) == 0 {
		t.Error("the document has no $ref: the check above would pass vacuously")
	}
}
