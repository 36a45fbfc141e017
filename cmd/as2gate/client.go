package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// apiClient talks to a running gateway's REST API, for the CLI commands that act on one.
type apiClient struct {
	server, token string
	http          *http.Client
}

func addClientFlags(cmd *cobra.Command, c *apiClient) {
	cmd.Flags().StringVar(&c.server, "server", envOr("AS2GATE_SERVER", "http://127.0.0.1:8080"), "the gateway's admin address (env AS2GATE_SERVER)")
	cmd.Flags().StringVar(&c.token, "token", os.Getenv("AS2GATE_TOKEN"), "an API bearer token (env AS2GATE_TOKEN)")
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func (c *apiClient) do(req *http.Request, out any) error {
	if c.token == "" {
		return fmt.Errorf("no API token: pass --token or set AS2GATE_TOKEN (the gateway prints one at its first start)")
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	hc := c.http
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Minute}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the gateway at %s: %w", c.server, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error    string
			Problems []struct{ Key, Message string }
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			msg := e.Error
			for _, p := range e.Problems {
				msg += "\n  " + p.Key + ": " + p.Message
			}
			return fmt.Errorf("the gateway answered %s: %s", resp.Status, msg)
		}
		return fmt.Errorf("the gateway answered %s", resp.Status)
	}
	if out == nil || len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	return json.Unmarshal(body, out)
}

func (c *apiClient) url(path string) string { return strings.TrimRight(c.server, "/") + path }

func sendCommand() *cobra.Command {
	var c apiClient
	var partner, subject, contentType, tag, profile string
	cmd := &cobra.Command{
		Use:   "send --partner ID FILE...",
		Short: "Submit files to a partner through a running gateway",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if partner == "" {
				return fmt.Errorf("--partner is required")
			}
			pr, pw := io.Pipe()
			mw := multipart.NewWriter(pw)
			go func() {
				err := writeForm(mw, map[string]string{
					"partner": partner, "subject": subject, "content_type": contentType, "tag": tag, "profile": profile,
				}, args)
				if err == nil {
					err = mw.Close()
				}
				pw.CloseWithError(err)
			}()
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, c.url("/api/v1/messages"), pr)
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", mw.FormDataContentType())
			var out struct {
				ID        int64  `json:"id"`
				MessageID string `json:"message_id"`
				State     string `json:"state"`
			}
			if err := c.do(req, &out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "message %d %s %s\n", out.ID, out.MessageID, out.State)
			return nil
		},
	}
	addClientFlags(cmd, &c)
	cmd.Flags().StringVar(&partner, "partner", "", "the partner's AS2 id")
	cmd.Flags().StringVar(&subject, "subject", "", "the message subject")
	cmd.Flags().StringVar(&contentType, "content-type", "", "the files' content type (detected when not given)")
	cmd.Flags().StringVar(&tag, "tag", "", "a transaction tag to find the message by")
	cmd.Flags().StringVar(&profile, "profile", "", "a send profile of the configuration: its HTTP headers go with the message")
	return cmd
}

// writeForm writes the form of a submission: the fields that are set, then the files.
func writeForm(mw *multipart.Writer, fields map[string]string, files []string) error {
	for name, v := range fields {
		if v != "" {
			if err := mw.WriteField(name, v); err != nil {
				return err
			}
		}
	}
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		w, err := mw.CreateFormFile("file", filepath.Base(path))
		if err == nil {
			_, err = io.Copy(w, f)
		}
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func messagesCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "messages", Short: "List, show and act on messages of a running gateway"}
	var lc apiClient
	var box, partner string
	list := &cobra.Command{
		Use:   "list",
		Short: "List messages (newest first)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			q := "?box=" + box
			if partner != "" {
				q += "&partner=" + partner
			}
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, lc.url("/api/v1/messages"+q), nil)
			if err != nil {
				return err
			}
			var out struct {
				Messages []struct {
					ID                                  int64
					MessageID                           string `json:"message_id"`
					Direction, Partner, State, LastCode string
					CreatedAt                           time.Time `json:"created_at"`
				}
			}
			if err := lc.do(req, &out); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tDIR\tPARTNER\tSTATE\tCREATED\tMESSAGE-ID")
			for _, m := range out.Messages {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", m.ID, m.Direction, m.Partner, m.State, m.CreatedAt.Local().Format(time.DateTime), m.MessageID)
			}
			return tw.Flush()
		},
	}
	addClientFlags(list, &lc)
	list.Flags().StringVar(&box, "box", "", "outbox, queued, sent, failed or received (default: all)")
	list.Flags().StringVar(&partner, "partner", "", "only this partner")
	var sc apiClient
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show one message with its attempts and MDN, as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, sc.url("/api/v1/messages/"+args[0]), nil)
			if err != nil {
				return err
			}
			var out json.RawMessage
			if err := sc.do(req, &out); err != nil {
				return err
			}
			var buf bytes.Buffer
			json.Indent(&buf, out, "", "  ")
			buf.WriteByte('\n')
			_, err = buf.WriteTo(cmd.OutOrStdout())
			return err
		},
	}
	addClientFlags(show, &sc)
	cmd.AddCommand(list, show)
	cmd.AddCommand(messageActionCommands()...)
	return cmd
}

// call sends a JSON request (body nil for none) to the API and reads the JSON answer into out.
func (c *apiClient) call(ctx context.Context, method, path string, body any, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(path), r)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.do(req, out)
}

// messageRef is what the CLI prints of a message an action returned.
type messageRef struct {
	ID        int64  `json:"id"`
	MessageID string `json:"message_id"`
	State     string `json:"state"`
}

// parseMessageID reads a message id argument (the number `messages list` shows).
func parseMessageID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("message id %q is not a positive number (the ID column of `as2gate messages list`)", s)
	}
	return id, nil
}

// messageActionCommands are the operator's actions on one message: each posts to
// /api/v1/messages/{id}/<action> and prints the message's state afterwards.
func messageActionCommands() []*cobra.Command {
	type spec struct {
		action, short string
		newID         bool // the retry's --new-message-id
		print         func(w io.Writer, id int64, m messageRef, newID bool)
	}
	state := func(w io.Writer, id int64, m messageRef, _ bool) {
		fmt.Fprintf(w, "message %d %s\n", m.ID, m.State)
	}
	specs := []spec{
		{action: "retry", short: "Queue a failed message again (with --new-message-id the partner sees a new transaction)", newID: true,
			print: func(w io.Writer, id int64, m messageRef, newID bool) {
				if newID {
					fmt.Fprintf(w, "message %d %s as %s\n", m.ID, m.State, m.MessageID)
					return
				}
				fmt.Fprintf(w, "message %d %s\n", m.ID, m.State)
			}},
		{action: "stop", short: "Stop retrying a queued message: it fails with \"stopped by operator\"", print: state},
		{action: "retry-now", short: "Send a queued message at once instead of at its next retry", print: state},
		{action: "resend", short: "Send a copy of a message as a new message, with a new Message-ID",
			print: func(w io.Writer, id int64, m messageRef, _ bool) {
				fmt.Fprintf(w, "message %d resent as message %d %s %s\n", id, m.ID, m.MessageID, m.State)
			}},
		{action: "replay", short: "Send a message again with its Message-ID, as a duplicate the partner recognises", print: state},
	}
	var cmds []*cobra.Command
	for _, sp := range specs {
		var c apiClient
		var newID bool
		cmd := &cobra.Command{
			Use:   sp.action + " ID",
			Short: sp.short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				id, err := parseMessageID(args[0])
				if err != nil {
					return err
				}
				var body any
				if newID {
					body = map[string]bool{"new_message_id": true}
				}
				var m messageRef
				if err := c.call(cmd.Context(), http.MethodPost, fmt.Sprintf("/api/v1/messages/%d/%s", id, sp.action), body, &m); err != nil {
					return fmt.Errorf("%s message %d: %w", sp.action, id, err)
				}
				sp.print(cmd.OutOrStdout(), id, m, newID)
				return nil
			},
		}
		addClientFlags(cmd, &c)
		if sp.newID {
			cmd.Flags().BoolVar(&newID, "new-message-id", false, "give the message a new Message-ID, so that the partner does not take it for a duplicate")
		}
		cmds = append(cmds, cmd)
	}
	return append(cmds, deleteCommand())
}

// deleteCommand deletes messages: one with DELETE /api/v1/messages/{id}, several in one
// request. Messages the gateway refuses to delete make the command fail, naming each.
func deleteCommand() *cobra.Command {
	var c apiClient
	cmd := &cobra.Command{
		Use:   "delete ID...",
		Short: "Delete messages that are not in flight, with their files",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ids := make([]int64, 0, len(args))
			for _, a := range args {
				id, err := parseMessageID(a)
				if err != nil {
					return err
				}
				ids = append(ids, id)
			}
			var out struct {
				Deleted []int64
				Refused []struct {
					ID    int64
					Error string
				}
			}
			var err error
			if len(ids) == 1 {
				err = c.call(cmd.Context(), http.MethodDelete, fmt.Sprintf("/api/v1/messages/%d", ids[0]), nil, &out)
				if err != nil {
					return fmt.Errorf("delete message %d: %w", ids[0], err)
				}
			} else if err = c.call(cmd.Context(), http.MethodPost, "/api/v1/messages/delete", map[string][]int64{"ids": ids}, &out); err != nil {
				return fmt.Errorf("delete: %w", err)
			}
			for _, id := range out.Deleted {
				fmt.Fprintf(cmd.OutOrStdout(), "message %d deleted\n", id)
			}
			if len(out.Refused) > 0 {
				msgs := make([]string, len(out.Refused))
				for i, r := range out.Refused {
					msgs[i] = fmt.Sprintf("message %d: %s", r.ID, r.Error)
				}
				return fmt.Errorf("%d of %d message(s) not deleted: %s", len(out.Refused), len(ids), strings.Join(msgs, "; "))
			}
			return nil
		},
	}
	addClientFlags(cmd, &c)
	return cmd
}

// partnerView is what the CLI reads of GET /api/v1/partners.
type partnerView struct {
	AS2ID        string `json:"as2_id"`
	URL          string
	Station      string
	Sign         string
	Encrypt      string
	MDN          string
	MDNSigned    bool `json:"mdn_signed"`
	Certificates []struct {
		NotAfter time.Time `json:"not_after"`
		DaysLeft int       `json:"days_left"`
	}
}

// expiry says how long the partner has a certificate: the one valid longest counts, since a
// partner rolling over its key lists the old and the new one.
func (p *partnerView) expiry() string {
	if len(p.Certificates) == 0 {
		return "no certificate"
	}
	last := p.Certificates[0]
	for _, c := range p.Certificates[1:] {
		if c.NotAfter.After(last.NotAfter) {
			last = c
		}
	}
	day := last.NotAfter.Format(time.DateOnly)
	if last.DaysLeft < 0 {
		return fmt.Sprintf("%s (expired %d days ago)", day, -last.DaysLeft)
	}
	return fmt.Sprintf("%s (%d days left)", day, last.DaysLeft)
}

func partnersCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "partners", Short: "List, show, add and remove the partners of a running gateway"}
	var lc apiClient
	list := &cobra.Command{
		Use:   "list",
		Short: "List the partners with their agreement and certificate expiry",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct{ Partners []partnerView }
			if err := lc.call(cmd.Context(), http.MethodGet, "/api/v1/partners", nil, &out); err != nil {
				return fmt.Errorf("list partners: %w", err)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "AS2 ID\tURL\tSTATION\tSIGN/ENCRYPT\tMDN\tCERTIFICATE EXPIRY")
			for _, p := range out.Partners {
				mdn := p.MDN
				if p.MDNSigned && p.MDN != "none" {
					mdn += " signed"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s/%s\t%s\t%s\n", p.AS2ID, p.URL, p.Station, p.Sign, p.Encrypt, mdn, p.expiry())
			}
			return tw.Flush()
		},
	}
	addClientFlags(list, &lc)
	var sc apiClient
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show one partner's settings and certificates, as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out json.RawMessage
			if err := sc.call(cmd.Context(), http.MethodGet, "/api/v1/partners/"+url.PathEscape(args[0]), nil, &out); err != nil {
				return fmt.Errorf("show partner %s: %w", args[0], err)
			}
			var buf bytes.Buffer
			if err := json.Indent(&buf, out, "", "  "); err != nil {
				return fmt.Errorf("show partner %s: the gateway's answer is not JSON: %w", args[0], err)
			}
			buf.WriteByte('\n')
			_, err := buf.WriteTo(cmd.OutOrStdout())
			return err
		},
	}
	addClientFlags(show, &sc)
	cmd.AddCommand(list, show, partnersAddCommand(), partnersRemoveCommand())
	return cmd
}
