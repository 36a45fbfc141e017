package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/as2gate/as2gate/internal/store"
	"github.com/as2gate/as2gate/internal/web"
)

// usersCommand manages the console's users in the gateway's database directly, without the
// API: it is how an operator gets back in when no admin can sign in. It reads the same
// configuration as serve and may run while the gateway runs.
func usersCommand() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "users",
		Short: "Manage the console's users in the gateway's database",
		Long: `Manage the console's users (roles admin, operator, viewer) directly in the gateway's
database, found through the configuration as serve finds it. Works while the gateway runs.`,
	}
	cmd.PersistentFlags().StringVar(&path, "config", "", "the configuration file (default ./as2gate.yaml when present, else built-in defaults)")
	withUsers := func(run func(ctx context.Context, st store.Users, cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(path)
			if err != nil {
				return err
			}
			st, err := openStore(cmd.Context(), cfg, true)
			if err != nil {
				return err
			}
			defer st.Close()
			return run(cmd.Context(), st, cmd, args)
		}
	}

	list := &cobra.Command{
		Use:   "list",
		Short: "List the users with their roles and open sessions",
		Args:  cobra.NoArgs,
		RunE: withUsers(func(ctx context.Context, st store.Users, cmd *cobra.Command, _ []string) error {
			us, err := st.ListUsers(ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tROLE\tSESSIONS\tCREATED")
			for _, u := range us {
				ss, err := st.ListSessions(ctx, u.Name)
				if err != nil {
					return err
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", u.Name, u.Role, len(ss), u.CreatedAt.UTC().Format("2006-01-02 15:04 UTC"))
			}
			return tw.Flush()
		}),
	}

	var role string
	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Add a user with a generated password, printed once",
		Args:  cobra.ExactArgs(1),
		RunE: withUsers(func(ctx context.Context, st store.Users, cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := web.ValidUserName(name); err != nil {
				return fmt.Errorf("user %q: %w", name, err)
			}
			if !store.ValidRole(role) {
				return fmt.Errorf("--role %q: want one of %s", role, strings.Join(store.Roles, ", "))
			}
			pw := web.GeneratePassword()
			hash, err := web.HashPassword(pw)
			if err != nil {
				return err
			}
			if err := st.CreateUser(ctx, &store.User{Name: name, Role: role, PasswordHash: hash}); err != nil {
				if errors.Is(err, store.ErrConflict) {
					return fmt.Errorf("user %q exists already (names ignore case)", name)
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "user %s added (role %s), password %s (shown only this once)\n", name, role, pw)
			return nil
		}),
	}
	add.Flags().StringVar(&role, "role", store.RoleOperator, "the role: admin, operator or viewer")

	passwd := &cobra.Command{
		Use:   "passwd NAME",
		Short: "Set a user's password from stdin, or generate one and print it once; ends the user's sessions",
		Long: `Set a user's password. The new password is read from the first line of stdin
(echo "$PW" | as2gate users passwd NAME); when stdin is a terminal or empty, a password is
generated and printed once. Every console session of the user ends.`,
		Args: cobra.ExactArgs(1),
		RunE: withUsers(func(ctx context.Context, st store.Users, cmd *cobra.Command, args []string) error {
			name := args[0]
			pw, err := readPassword(cmd.InOrStdin())
			if err != nil {
				return err
			}
			generated := pw == ""
			if generated {
				pw = web.GeneratePassword()
			}
			hash, err := web.HashPassword(pw)
			if err != nil {
				return err
			}
			if err := st.SetUserPassword(ctx, name, hash); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("there is no user %q (as2gate users list shows them)", name)
				}
				return err
			}
			if generated {
				fmt.Fprintf(cmd.OutOrStdout(), "password of %s set to %s (shown only this once); its sessions ended\n", name, pw)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "password of %s set; its sessions ended\n", name)
			}
			return nil
		}),
	}

	remove := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a user and end its sessions (never the last admin)",
		Args:  cobra.ExactArgs(1),
		RunE: withUsers(func(ctx context.Context, st store.Users, cmd *cobra.Command, args []string) error {
			name := args[0]
			switch err := st.DeleteUser(ctx, name); {
			case errors.Is(err, store.ErrNotFound):
				return fmt.Errorf("there is no user %q (as2gate users list shows them)", name)
			case errors.Is(err, store.ErrConflict):
				return fmt.Errorf("%s is the last admin and cannot be removed: make another user admin first", name)
			case err != nil:
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "user %s removed\n", name)
			return nil
		}),
	}
	cmd.AddCommand(list, add, passwd, remove)
	return cmd
}

// readPassword reads the first line of in, without its line end; "" when in is a
// terminal or empty.
func readPassword(in io.Reader) (string, error) {
	if f, ok := in.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			return "", nil
		}
	}
	line, err := bufio.NewReader(io.LimitReader(in, 4<<10)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the password from stdin: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
