// Command authtest serves the authtest OpenID Connect provider on a
// loopback address, to try an application against it by hand:
//
//	go run github.com/gatehouse/auth/authtest/cmd/authtest
//
// It prints the settings for the example application, ready to paste or
// to eval in a shell:
//
//	AUTH_ISSUER=http://127.0.0.1:9999
//	AUTH_CLIENT_ID=test-client
//	AUTH_CLIENT_SECRET=test-secret
//
// and serves until SIGINT or SIGTERM, when it exits with status 0.
// SIGHUP rotates the signing key; the old keys stay published, so tokens
// already issued still verify. Everything lives in memory: a restart
// forgets sessions, tokens and keys.
//
// Flags:
//
//	-addr host:port          listen address (default 127.0.0.1:9999; port 0 picks a free one)
//	-host name               host name in the issuer URL (default: the host of -addr)
//	-insecure-non-loopback   allow an -addr that is not loopback; this is a test provider
//	-client-id id            the client's ID (default test-client)
//	-client-secret secret    the client's secret (default test-secret)
//	-client-name name        the client's name on the provider's pages (default Test App)
//	-redirect-uri uri        a registered redirect URI, repeatable
//	                         (default http://127.0.0.1:8080/auth/callback, the example's)
//	-insecure-redirect-prefix p
//	                         accept every redirect URI that starts with p, repeatable;
//	                         exact matching is the rule (RFC 9700 §2.1)
//	-post-logout-redirect-uri uri
//	                         a registered post_logout_redirect_uri, repeatable
//	                         (default http://127.0.0.1:8080/)
//	-users file.json         the users, instead of alice and bob: a JSON array of
//	                         {"sub", "email", "email_verified", "name", "picture",
//	                         "groups", "extra"}; only "sub" is required
//	-auto-approve sub        sign this user in without showing the user chooser
//	-alg RS256|ES256         ID token signing algorithm (default RS256)
//	-access-ttl d            access token lifetime (default 1h)
//	-id-ttl d                ID token lifetime (default 1h)
//	-refresh-ttl d           refresh token lifetime (default 24h)
//	-rotation mode           refresh tokens: rotate (default; reuse revokes the grant),
//	                         grace (a used token works for -refresh-grace more) or none
//	-refresh-grace d         see -rotation grace (default 10s)
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/gatehouse/auth/authtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	os.Exit(run(ctx, os.Args[1:], hup, os.Stdout, os.Stderr))
}

// run serves the provider that args describe until ctx is done,
// rotating its key on each value from rotate, and returns the exit
// status.
func run(ctx context.Context, args []string, rotate <-chan os.Signal, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "authtest:", err)
		return 2
	}
	p, err := start(cfg)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer p.Close()
	fmt.Fprintf(stdout, "AUTH_ISSUER=%s\nAUTH_CLIENT_ID=%s\nAUTH_CLIENT_SECRET=%s\n", p.URL, p.ClientID, p.ClientSecret)
	var subs []string
	for _, u := range cfg.Users {
		subs = append(subs, u.Subject)
	}
	fmt.Fprintf(stderr, "authtest: serving %s for client %s\n  redirect URIs: %s\n  post-logout redirect URIs: %s\n  users: %s\n  SIGHUP rotates the signing key; SIGINT stops.\n",
		p.URL, p.ClientID, strings.Join(append(cfg.RedirectURIs, prefixes(cfg.InsecureRedirectURIPrefixes)...), " "),
		strings.Join(cfg.PostLogoutRedirectURIs, " "), strings.Join(subs, " "))
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(stderr, "authtest: stopped")
			return 0
		case <-rotate:
			p.RotateKey(true)
			fmt.Fprintln(stderr, "authtest: rotated the signing key")
		}
	}
}

func prefixes(ps []string) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p+"*")
	}
	return out
}

// start starts the provider, turning the panic of a bad Config or a
// failed listen into an error.
func start(cfg authtest.Config) (p *authtest.Provider, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return authtest.NewProvider(cfg), nil
}

// list is a repeatable string flag.
type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

// parseFlags returns the provider's Config.
func parseFlags(args []string, stderr io.Writer) (authtest.Config, error) {
	var cfg authtest.Config
	fs := flag.NewFlagSet("authtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: authtest [flags]\n\nServes a test OpenID Connect provider on loopback and prints AUTH_ISSUER,\nAUTH_CLIENT_ID and AUTH_CLIENT_SECRET. SIGHUP rotates the signing key.\n\n")
		fs.PrintDefaults()
	}
	addr := fs.String("addr", "127.0.0.1:9999", "listen `address`; port 0 picks a free one")
	host := fs.String("host", "", "host `name` in the issuer URL (default: the host of -addr)")
	nonLoopback := fs.Bool("insecure-non-loopback", false, "allow an -addr that is not loopback")
	fs.StringVar(&cfg.ClientID, "client-id", "test-client", "the client's `ID`")
	fs.StringVar(&cfg.ClientSecret, "client-secret", "test-secret", "the client's `secret`")
	fs.StringVar(&cfg.ClientName, "client-name", "Test App", "the client's `name` on the provider's pages")
	var redirects, redirectPrefixes, logouts list
	fs.Var(&redirects, "redirect-uri", "a registered redirect `URI`, repeatable (default http://127.0.0.1:8080/auth/callback)")
	fs.Var(&redirectPrefixes, "insecure-redirect-prefix", "accept every redirect URI that starts with `prefix`, repeatable")
	fs.Var(&logouts, "post-logout-redirect-uri", "a registered post_logout_redirect_`URI`, repeatable (default http://127.0.0.1:8080/)")
	usersFile := fs.String("users", "", "JSON `file` with the users (default alice and bob)")
	fs.StringVar(&cfg.AutoApprove, "auto-approve", "", "sign this user (`sub`) in without the user chooser")
	fs.StringVar(&cfg.SigningAlg, "alg", "RS256", "ID token signing `algorithm`: RS256 or ES256")
	fs.DurationVar(&cfg.AccessTokenTTL, "access-ttl", 0, "access token `lifetime` (default 1h)")
	fs.DurationVar(&cfg.IDTokenTTL, "id-ttl", 0, "ID token `lifetime` (default 1h)")
	fs.DurationVar(&cfg.RefreshTokenTTL, "refresh-ttl", 0, "refresh token `lifetime` (default 24h)")
	rotation := fs.String("rotation", "rotate", "refresh token rotation `mode`: rotate, grace or none")
	fs.DurationVar(&cfg.RefreshGrace, "refresh-grace", 0, "with -rotation grace, how long a used refresh token keeps working (default 10s)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	h, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return cfg, fmt.Errorf("-addr: %w", err)
	}
	if !isLoopback(h) && !*nonLoopback {
		return cfg, fmt.Errorf("-addr %s is not a loopback address; this is a test provider (-insecure-non-loopback allows it)", *addr)
	}
	cfg.Addr = *addr
	cfg.Host = *host
	if cfg.Host == "" {
		cfg.Host = h
		if ip, err := netip.ParseAddr(h); h == "" || err == nil && ip.IsUnspecified() {
			cfg.Host = "127.0.0.1"
		}
	}

	cfg.RedirectURIs = redirects
	if len(redirects) == 0 && len(redirectPrefixes) == 0 {
		cfg.RedirectURIs = []string{"http://127.0.0.1:8080/auth/callback"}
	}
	cfg.InsecureRedirectURIPrefixes = redirectPrefixes
	cfg.PostLogoutRedirectURIs = logouts
	if len(logouts) == 0 {
		cfg.PostLogoutRedirectURIs = []string{"http://127.0.0.1:8080/"}
	}
	switch *rotation {
	case "rotate":
		cfg.Rotation = authtest.Rotate
	case "grace":
		cfg.Rotation = authtest.RotateWithGrace
	case "none":
		cfg.Rotation = authtest.NoRotation
	default:
		return cfg, fmt.Errorf("-rotation %q: want rotate, grace or none", *rotation)
	}
	for _, d := range []struct {
		name string
		v    int64
	}{{"access-ttl", int64(cfg.AccessTokenTTL)}, {"id-ttl", int64(cfg.IDTokenTTL)}, {"refresh-ttl", int64(cfg.RefreshTokenTTL)}, {"refresh-grace", int64(cfg.RefreshGrace)}} {
		if d.v < 0 {
			return cfg, fmt.Errorf("-%s must not be negative", d.name)
		}
	}
	if *usersFile != "" {
		if cfg.Users, err = readUsers(*usersFile); err != nil {
			return cfg, err
		}
	} else {
		cfg.Users = authtest.Users()
	}
	return cfg, nil
}

// isLoopback reports whether host is localhost or a loopback IP address.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// readUsers reads a JSON array of users, with the claim names as keys.
func readUsers(name string) ([]authtest.User, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("-users: %w", err)
	}
	var in []struct {
		Subject       string         `json:"sub"`
		Email         string         `json:"email"`
		EmailVerified bool           `json:"email_verified"`
		Name          string         `json:"name"`
		Picture       string         `json:"picture"`
		Groups        []string       `json:"groups"`
		Extra         map[string]any `json:"extra"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("-users %s: %w", name, err)
	}
	if len(in) == 0 {
		return nil, fmt.Errorf("-users %s: no users", name)
	}
	users := make([]authtest.User, len(in))
	for i, u := range in {
		if u.Subject == "" {
			return nil, fmt.Errorf("-users %s: user %d has no sub", name, i+1)
		}
		users[i] = authtest.User(u)
	}
	return users, nil
}
