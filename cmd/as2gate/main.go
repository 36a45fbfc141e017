// Command as2gate is an AS2 (RFC 4130) gateway: one binary that exchanges business documents
// with trading partners, never loses a message, and says what went wrong and what to do.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/as2gate/as2gate/internal/config"
	"github.com/as2gate/as2gate/internal/web"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := rootCommand().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "as2gate:", err)
		os.Exit(1)
	}
}

func rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "as2gate",
		Short:         "An AS2 gateway",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCommand(), sendCommand(), messagesCommand(), partnersCommand(), usersCommand(), keysCommand(), configCommand(), &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), "as2gate", version) },
	})
	return root
}

// loadConfig reads the configuration: the named file, else ./as2gate.yaml when present,
// else the built-in defaults.
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		if _, err := os.Stat("as2gate.yaml"); err == nil {
			path = "as2gate.yaml"
		}
	}
	if path == "" {
		return config.Default(), nil
	}
	return config.Load(path)
}

func serveCommand() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway (partner listener, console and API, send worker)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(path)
			if err != nil {
				return err
			}
			return serve(cmd.Context(), cfg, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "the configuration file (default ./as2gate.yaml when present, else built-in defaults)")
	return cmd
}

// serve prepares cfg (default station and API token when none are configured), validates
// it, and runs the gateway until ctx ends.
func serve(ctx context.Context, cfg *config.Config, out io.Writer) error {
	now := time.Now()
	st, createdStation, err := cfg.EnsureStation(now)
	if err != nil {
		return err
	}
	token, createdToken, err := cfg.EnsureAPIToken()
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := newLogger(cfg, os.Stderr)
	g, err := Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer g.Close()
	fmt.Fprintf(out, "as2gate %s\n", version)
	fmt.Fprintf(out, "  partners send to   %s (AS2, POST /as2)\n", listenURL(g.AS2Addr().String(), cfg.TLS.AS2 != nil))
	fmt.Fprintf(out, "  console            %s/\n", listenURL(g.AdminAddr().String(), cfg.TLS.Admin != nil))
	fmt.Fprintf(out, "  API and health     %s/api/v1  %s/healthz\n", listenURL(g.AdminAddr().String(), cfg.TLS.Admin != nil), listenURL(g.AdminAddr().String(), cfg.TLS.Admin != nil))
	if pw := g.AdminPassword(); pw != "" {
		fmt.Fprintf(out, "  console user       %s, password %s (generated; shown only this once)\n", web.FirstAdmin, pw)
	}
	fmt.Fprintf(out, "  data folder        %s\n", cfg.DataDir)
	if st != nil {
		state := "reused"
		if createdStation {
			state = "generated"
		}
		fmt.Fprintf(out, "  station            %s (%s; certificate %s: give it to your partners)\n", st.AS2ID, state, st.CertFile)
	}
	if token != "" {
		if createdToken {
			fmt.Fprintf(out, "  API token          %s (generated, kept in %s/api-token)\n", token, cfg.KeysDir())
		} else {
			fmt.Fprintf(out, "  API token          in %s/api-token\n", cfg.KeysDir())
		}
	}
	if len(g.partners.current().cfg.Partners) == 0 {
		fmt.Fprintln(out, "  no partners yet: add them in the console, with `as2gate partners add`, or in as2gate.yaml (see the README)")
	}
	log.Info("gateway started", "as2", g.AS2Addr().String(), "admin", g.AdminAddr().String())
	err = g.Run(ctx)
	log.Info("gateway stopped")
	return err
}

func listenURL(addr string, tls bool) string {
	scheme := "http"
	if tls {
		scheme = "https"
	}
	return scheme + "://" + addr
}

// newLogger logs text to a terminal and JSON otherwise, unless the configuration says.
func newLogger(cfg *config.Config, w *os.File) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.Log.Level}
	format := cfg.Log.Format
	if format == "" || format == config.LogAuto {
		format = config.LogJSON
		if fi, err := w.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			format = config.LogText
		}
	}
	if format == config.LogText {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func keysCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Manage key pairs"}
	var id, dir string
	gen := &cobra.Command{
		Use:   "generate --as2-id ID",
		Short: "Generate a private key and a self-signed certificate for a station",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if id == "" {
				return errors.New("--as2-id is required")
			}
			certPath, keyPath, err := config.GenerateIdentity(dir, id, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "certificate %s\nprivate key %s\n", certPath, keyPath)
			return nil
		},
	}
	gen.Flags().StringVar(&id, "as2-id", "", "the station's AS2 id")
	gen.Flags().StringVar(&dir, "dir", "keys", "the folder to write the key and certificate to")
	cmd.AddCommand(gen)
	return cmd
}

func configCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Work with configuration files"}
	check := &cobra.Command{
		Use:   "check FILE",
		Short: "Load and validate a configuration file, and report every problem",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(args[0])
			if err != nil {
				return err
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid (%d station(s), %d partner(s))\n", args[0], len(cfg.Stations), len(cfg.Partners))
			return nil
		},
	}
	cmd.AddCommand(check)
	return cmd
}
