package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
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
		var e struct{ Error string }
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return fmt.Errorf("the gateway answered %s: %s", resp.Status, e.Error)
		}
		return fmt.Errorf("the gateway answered %s", resp.Status)
	}
	return json.Unmarshal(body, out)
}

func (c *apiClient) url(path string) string { return strings.TrimRight(c.server, "/") + path }

func sendCommand() *cobra.Command {
	var c apiClient
	var partner, subject, contentType, tag string
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
				err := writeForm(mw, partner, subject, contentType, tag, args)
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
	return cmd
}

func writeForm(mw *multipart.Writer, partner, subject, contentType, tag string, files []string) error {
	for name, v := range map[string]string{"partner": partner, "subject": subject, "content_type": contentType, "tag": tag} {
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
	cmd := &cobra.Command{Use: "messages", Short: "List and show messages of a running gateway"}
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
	return cmd
}
