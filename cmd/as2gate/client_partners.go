package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

// partnersAddCommand adds a partner to a running gateway through the API: it is kept in the
// gateway's database and in effect at once.
func partnersAddCommand() *cobra.Command {
	var (
		c                                apiClient
		as2ID, partnerURL, station, from string
		sign, encrypt, mdn, password     string
		certs                            []string
	)
	cmd := &cobra.Command{
		Use:   "add --as2-id ID --url URL [--cert FILE]... | --from FILE.yaml",
		Short: "Add a partner to a running gateway, in effect at once and kept across restarts",
		Long: `Add a partner to a running gateway. The partner is kept in the gateway's database,
validated exactly as a partner of the configuration file, and in effect at once.

--from reads one item of the configuration file's partners list (YAML); its certs that
are files here are uploaded. The flags set or override the common keys.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			entry := map[string]any{}
			var uploads []string
			if from != "" {
				data, err := os.ReadFile(from)
				if err != nil {
					return err
				}
				if err := yaml.Unmarshal(data, &entry); err != nil {
					return fmt.Errorf("%s: not a YAML partner entry: %w", from, err)
				}
				if entry == nil {
					return fmt.Errorf("%s is empty: write one partner as in the configuration file's partners list", from)
				}
				// Certificates named as files next to the entry are uploaded; other certs
				// are paths on the gateway's host and stay as they are.
				if list, ok := entry["certs"].([]any); ok {
					var keep []any
					for _, item := range list {
						name, _ := item.(string)
						path := name
						if path != "" && !filepath.IsAbs(path) {
							path = filepath.Join(filepath.Dir(from), path)
						}
						if _, err := os.Stat(path); name != "" && err == nil {
							uploads = append(uploads, path)
							continue
						}
						keep = append(keep, item)
					}
					if len(keep) == 0 {
						delete(entry, "certs")
					} else {
						entry["certs"] = keep
					}
				}
			}
			for key, v := range map[string]string{"as2_id": as2ID, "url": partnerURL, "station": station, "sign": sign, "encrypt": encrypt, "mdn": mdn} {
				if v != "" {
					entry[key] = v
				}
			}
			if _, ok := entry["as2_id"]; !ok {
				return errors.New("--as2-id (or as2_id in --from) is required")
			}
			uploads = append(uploads, certs...)
			doc, err := json.Marshal(entry)
			if err != nil {
				return fmt.Errorf("the entry cannot be sent as JSON: %w", err)
			}
			var body bytes.Buffer
			mw := multipart.NewWriter(&body)
			mw.WriteField("entry", string(doc))
			if password != "" {
				mw.WriteField("password", password)
			}
			if err := writeForm(mw, nil, uploads); err != nil {
				return err
			}
			if err := mw.Close(); err != nil {
				return err
			}
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, c.url("/api/v1/partners"), &body)
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", mw.FormDataContentType())
			var out partnerView
			if err := c.do(req, &out); err != nil {
				return fmt.Errorf("add partner %v: %w", entry["as2_id"], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "partner %s added (station %s, %s, certificate %s)\n", out.AS2ID, out.Station, out.URL, out.expiry())
			return nil
		},
	}
	addClientFlags(cmd, &c)
	f := cmd.Flags()
	f.StringVar(&as2ID, "as2-id", "", "the partner's AS2 id (as2_id)")
	f.StringVar(&partnerURL, "url", "", "where messages to the partner are POSTed (url)")
	f.StringVar(&station, "station", "", "our station that trades with the partner (station)")
	f.StringArrayVar(&certs, "cert", nil, "a certificate file of the partner's: PEM, DER or PKCS#12 (repeat for several)")
	f.StringVar(&password, "cert-password", "", "the password of a PKCS#12 certificate file")
	f.StringVar(&sign, "sign", "", "the signing digest (sign: none, sha1, sha256, sha384, sha512)")
	f.StringVar(&encrypt, "encrypt", "", "the content cipher (encrypt: none, 3des, aes128-cbc, aes256-cbc, aes128-gcm, ...)")
	f.StringVar(&mdn, "mdn", "", "the receipt asked for (mdn: sync, async, none)")
	f.StringVar(&from, "from", "", "a YAML file holding one partners item of the configuration file")
	return cmd
}

// partnersRemoveCommand removes a partner added at run time.
func partnersRemoveCommand() *cobra.Command {
	var c apiClient
	cmd := &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a partner added at run time (partners of the configuration file are changed there)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.call(cmd.Context(), http.MethodDelete, "/api/v1/partners/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return fmt.Errorf("remove partner %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "partner %s removed\n", args[0])
			return nil
		},
	}
	addClientFlags(cmd, &c)
	return cmd
}
