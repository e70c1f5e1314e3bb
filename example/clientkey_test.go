package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/authtest"
)

// writeKey writes a new EC private key to a PEM file (as openssl genpkey
// writes it) and returns its path and public key.
func writeKey(t *testing.T) (string, crypto.PublicKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "client.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return file, key.Public()
}

// TestClientKeyFile runs the example against a provider where the client
// registered its public key (private_key_jwt) instead of a secret: with
// AUTH_CLIENT_KEY_ID, and with the key's thumbprint as its ID.
func TestClientKeyFile(t *testing.T) {
	file, pub := writeKey(t)
	thumb, err := auth.KeyThumbprint(pub)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, kid string // the kid AUTH_CLIENT_KEY_ID sets; the provider knows the key as kid or thumb
	}{
		{"AUTH_CLIENT_KEY_ID", "my-key-1"},
		{"thumbprint", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			registered := tt.kid
			if registered == "" {
				registered = thumb
			}
			p := authtest.NewProvider(authtest.Config{ClientID: "my-app", TokenAuthMethods: []string{"private_key_jwt"},
				ClientKeys: map[string]crypto.PublicKey{registered: pub}})
			t.Cleanup(p.Close)
			env := startExample(t, map[string]string{
				"AUTH_ISSUER":          p.URL,
				"AUTH_CLIENT_ID":       "my-app",
				"AUTH_CLIENT_KEY_FILE": file,
				"AUTH_CLIENT_KEY_ID":   tt.kid,
			})
			p.AddRedirectURI(env.PublicURL + "/auth/callback")
			browser := p.Login(t, env.PublicURL+"/auth/login?next=/api/userinfo", "bob")
			res, body := do(t, browser, "GET", env.PublicURL+"/api/userinfo")
			if res.StatusCode != http.StatusOK || !strings.Contains(body, `"sub":"bob"`) {
				t.Errorf("GET /api/userinfo as bob: %d %s, want 200 with bob's claims", res.StatusCode, body)
			}
			for _, r := range p.Requests() {
				if r.Endpoint == "token" && (r.Form.Get("client_assertion") == "" || r.Form.Has("client_secret")) {
					t.Errorf("token request %v: want a client assertion and no secret", r.Form)
				}
			}
		})
	}
}

// TestResponseModeSetting: AUTH_RESPONSE_MODE=form_post asks the provider
// to post its answer, which needs an https PUBLIC_URL.
func TestResponseModeSetting(t *testing.T) {
	env := startExample(t, map[string]string{"AUTH_RESPONSE_MODE": "form_post", "PUBLIC_URL": "https://app.example.com"})
	res, _ := do(t, noRedirects(), "GET", "http://"+env.Listener.Addr().String()+"/auth/login")
	loc, _ := url.Parse(res.Header.Get("Location"))
	if got := loc.Query().Get("response_mode"); got != "form_post" {
		t.Errorf("authorize response_mode = %q, want form_post", got)
	}
}

func TestBadClientSettings(t *testing.T) {
	file, _ := writeKey(t)
	for _, tt := range []struct {
		name string
		vars map[string]string
		want string
	}{
		{"form_post over http", map[string]string{"AUTH_RESPONSE_MODE": "form_post"}, "needs an https RedirectURL"},
		{"unknown response mode", map[string]string{"AUTH_RESPONSE_MODE": "fragment", "PUBLIC_URL": "https://app.example.com"}, "neither query nor form_post"},
		{"key file, embedded provider", map[string]string{"AUTH_CLIENT_KEY_FILE": file}, "AUTH_CLIENT_KEY_FILE needs AUTH_ISSUER"},
		{"key ID without file", map[string]string{"AUTH_CLIENT_KEY_ID": "k"}, "AUTH_CLIENT_KEY_ID needs AUTH_CLIENT_KEY_FILE"},
		{"missing key file", map[string]string{"AUTH_ISSUER": "http://127.0.0.1:1", "AUTH_CLIENT_ID": "x", "AUTH_CLIENT_KEY_FILE": filepath.Join(t.TempDir(), "none.pem")}, "AUTH_CLIENT_KEY_FILE"},
		{"not a key", map[string]string{"AUTH_ISSUER": "http://127.0.0.1:1", "AUTH_CLIENT_ID": "x", "AUTH_CLIENT_KEY_FILE": "clientkey.go"}, "no PRIVATE KEY"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{"ADDR": "127.0.0.1:0"}
			for k, v := range tt.vars {
				vars[k] = v
			}
			env, _, err := setup(context.Background(), func(k string) string { return vars[k] }, slog.New(slog.NewTextHandler(t.Output(), nil)))
			if err == nil {
				env.Close()
				t.Fatalf("setup with %v: no error, want one mentioning %s", tt.vars, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("setup with %v: %v, want an error mentioning %s", tt.vars, err, tt.want)
			}
		})
	}
}
