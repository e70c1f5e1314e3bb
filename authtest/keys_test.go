package authtest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/auth/authtest"
	"github.com/gatehouse/auth/internal/apptest"
)

func TestSigningAlg(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		alg      string
		wantAlg  string
		wantKeys string // kty/alg of each key in the JWKS; the first signs
	}{
		{"", "RS256", "RSA/RS256"},
		{"RS256", "RS256", "RSA/RS256"},
		// OIDC Discovery 1.0 §3: RS256 must be among the supported
		// algorithms, so an RS256 key is published too.
		{"ES256", "ES256", "EC/ES256 RSA/RS256"},
	} {
		t.Run(tt.alg, func(t *testing.T) {
			t.Parallel()
			p := newProvider(t, authtest.Config{SigningAlg: tt.alg})
			keys := jwks(t, p)
			var got []string
			for _, k := range keys {
				got = append(got, fmt.Sprint(k["kty"], "/", k["alg"]))
				if k["use"] != "sig" || k["kid"] == "" {
					t.Errorf("GET /jwks: key %v, want use sig and a kid", k)
				}
				if _, ok := k["d"]; ok {
					t.Errorf("GET /jwks: a private key")
				}
			}
			if strings.Join(got, " ") != tt.wantKeys {
				t.Errorf("GET /jwks: keys %v, want %s", got, tt.wantKeys)
			}
			tr := login(t, p, "alice")
			if got := jwtPart(t, tr.IDToken, 0); got["alg"] != tt.wantAlg || got["kid"] != keys[0]["kid"] {
				t.Errorf("ID token header %v, want alg %s, kid %v", got, tt.wantAlg, keys[0]["kid"])
			}
			if _, err := verify(t, p, tr.IDToken); err != nil {
				t.Errorf("Verify: %v", err)
			}
			p.RotateKey(false)
			if n := len(jwks(t, p)); n != len(keys) {
				t.Errorf("after RotateKey(false): %d keys in the JWKS, want %d", n, len(keys))
			}
			if _, err := verify(t, p, login(t, p, "alice").IDToken); err != nil {
				t.Errorf("Verify after RotateKey(false): %v", err)
			}
		})
	}
}

// jwks returns the keys the provider publishes.
func jwks(t *testing.T, p *authtest.Provider) []map[string]any {
	t.Helper()
	res, body := apptest.Get(t, p.Client(), p.URL+"/jwks")
	var set struct{ Keys []map[string]any }
	if err := json.Unmarshal([]byte(body), &set); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET /jwks: status %d, %v", res.StatusCode, err)
	}
	return set.Keys
}

func TestRotateKey(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		keepOld  bool
		wantKeys int
	}{
		{false, 1},
		{true, 2},
	} {
		t.Run(map[bool]string{false: "drop old", true: "keep old"}[tt.keepOld], func(t *testing.T) {
			t.Parallel()
			p := newProvider(t, authtest.Config{})
			// One verifier throughout, as in an application: it caches keys.
			ctx, _, v := goOIDC(t, p)
			old := login(t, p, "alice").IDToken
			if _, err := v.Verify(ctx, old); err != nil {
				t.Fatalf("Verify(old token) before RotateKey: %v", err)
			}

			p.RotateKey(tt.keepOld)
			if got := len(jwks(t, p)); got != tt.wantKeys {
				t.Errorf("after RotateKey(%v): %d keys in JWKS, want %d", tt.keepOld, got, tt.wantKeys)
			}
			current := login(t, p, "alice").IDToken
			if jwtPart(t, current, 0)["kid"] == jwtPart(t, old, 0)["kid"] {
				t.Errorf("after RotateKey(%v): new token has the old kid", tt.keepOld)
			}
			if _, err := v.Verify(ctx, current); err != nil {
				t.Errorf("Verify(new token) after RotateKey(%v): %v", tt.keepOld, err)
			}
			if _, err := v.Verify(ctx, old); (err == nil) != tt.keepOld {
				t.Errorf("Verify(old token) after RotateKey(%v): error %v, want error %v", tt.keepOld, err, !tt.keepOld)
			}
		})
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		faults []authtest.Fault
		check  func(t *testing.T, p *authtest.Provider)
	}{
		{"TokenStatus", []authtest.Fault{{TokenStatus: 500}}, func(t *testing.T, p *authtest.Provider) {
			form := codeForm(code(t, p, "alice", authParams(p)))
			if tr := post(t, p, "/token", form); tr.Status != 500 || tr.Error != "server_error" {
				t.Errorf("POST /token: status %d, error %q; want 500 server_error", tr.Status, tr.Error)
			}
			// The fault was used up, and the code was not.
			checkTokenResult(t, "POST /token again", post(t, p, "/token", form), "")
		}},
		{"TokenBody", []authtest.Fault{{TokenBody: "not json"}}, func(t *testing.T, p *authtest.Provider) {
			if status, body := rawToken(t, p); status != 200 || body != "not json" {
				t.Errorf("POST /token: status %d, body %q; want 200, not json", status, body)
			}
		}},
		{"TokenStatus and TokenBody", []authtest.Fault{{TokenStatus: 502, TokenBody: "<html>bad gateway</html>"}}, func(t *testing.T, p *authtest.Provider) {
			if status, body := rawToken(t, p); status != 502 || body != "<html>bad gateway</html>" {
				t.Errorf("POST /token: status %d, body %q; want 502 and the body", status, body)
			}
		}},
		{"successive faults", []authtest.Fault{{TokenStatus: 500}, {TokenStatus: 503}}, func(t *testing.T, p *authtest.Provider) {
			for _, want := range []int{500, 503, 200} {
				if status, _ := rawToken(t, p); status != want {
					t.Errorf("POST /token: status %d, want %d", status, want)
				}
			}
		}},
		{"TokenDelay", []authtest.Fault{{TokenDelay: 20 * time.Millisecond}}, func(t *testing.T, p *authtest.Provider) {
			start := time.Now()
			if status, _ := rawToken(t, p); status != 200 || time.Since(start) < 20*time.Millisecond {
				t.Errorf("POST /token: status %d after %v, want 200 after 20ms", status, time.Since(start))
			}
		}},
		{"TokenDelay cancelled", []authtest.Fault{{TokenDelay: time.Hour}}, func(t *testing.T, p *authtest.Provider) {
			form := codeForm(code(t, p, "alice", authParams(p)))
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL+"/token", strings.NewReader(form.Encode()))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(p.ClientID, p.ClientSecret)
			if _, err := p.Client().Do(req); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("POST /token: %v, want context.DeadlineExceeded", err)
			}
			checkTokenResult(t, "POST /token again", post(t, p, "/token", form), "")
		}},
		{"IDToken wrong aud", []authtest.Fault{{IDToken: func(c map[string]any) { c["aud"] = []string{"other"} }}}, expectVerifyError},
		{"IDToken extra audience", []authtest.Fault{{IDToken: func(c map[string]any) { c["aud"] = []string{"test-client", "other"} }}}, func(t *testing.T, p *authtest.Provider) {
			if got := jwtPart(t, login(t, p, "alice").IDToken, 1)["aud"]; mustJSON(got) != `["test-client","other"]` {
				t.Errorf("ID token aud = %v, want [test-client other]", got)
			}
		}},
		{"IDToken wrong iss", []authtest.Fault{{IDToken: func(c map[string]any) { c["iss"] = "http://evil.example" }}}, expectVerifyError},
		{"IDToken huge claim", []authtest.Fault{{IDToken: func(c map[string]any) { c["blob"] = strings.Repeat("x", 100_000) }}}, func(t *testing.T, p *authtest.Provider) {
			tr := login(t, p, "alice")
			if _, err := verify(t, p, tr.IDToken); err != nil || len(tr.IDToken) < 100_000 {
				t.Errorf("Verify(%d bytes): %v; want a valid token over 100 kB", len(tr.IDToken), err)
			}
		}},
		{"IDTokenSigning none", []authtest.Fault{{IDTokenSigning: "none"}}, func(t *testing.T, p *authtest.Provider) {
			tr := login(t, p, "alice")
			if h := jwtPart(t, tr.IDToken, 0); h["alg"] != "none" || !strings.HasSuffix(tr.IDToken, ".") {
				t.Errorf("ID token header %v, token ends %q; want alg none and no signature", h, tr.IDToken[len(tr.IDToken)-1:])
			}
			expectVerifyErrorFor(t, p, tr.IDToken)
		}},
		{"IDTokenSigning bad-signature", []authtest.Fault{{IDTokenSigning: "bad-signature"}}, expectVerifyError},
		{"IDTokenSigning unknown-key", []authtest.Fault{{IDTokenSigning: "unknown-key"}}, func(t *testing.T, p *authtest.Provider) {
			tr := login(t, p, "alice")
			if kid := jwtPart(t, tr.IDToken, 0)["kid"]; kid == nil || kid == jwks(t, p)[0]["kid"] {
				t.Errorf("ID token kid %v, want one not in the JWKS", kid)
			}
			expectVerifyErrorFor(t, p, tr.IDToken)
		}},
		{"IDTokenSigning no-kid", []authtest.Fault{{IDTokenSigning: "no-kid"}}, func(t *testing.T, p *authtest.Provider) {
			tr := login(t, p, "alice")
			if kid, ok := jwtPart(t, tr.IDToken, 0)["kid"]; ok {
				t.Errorf("ID token kid %v, want none", kid)
			}
			// Signed by the right key: verifiers that try every key accept it.
			if _, err := verify(t, p, tr.IDToken); err != nil {
				t.Errorf("Verify: %v", err)
			}
		}},
		{"IDToken fault outlives a token fault", []authtest.Fault{{TokenStatus: 500, IDTokenSigning: "none"}}, func(t *testing.T, p *authtest.Provider) {
			if status, _ := rawToken(t, p); status != 500 {
				t.Errorf("POST /token: status %d, want 500", status)
			}
			expectVerifyError(t, p)
			if _, err := verify(t, p, login(t, p, "alice").IDToken); err != nil {
				t.Errorf("Verify(third token): %v", err)
			}
		}},
		{"IDToken on refresh", nil, func(t *testing.T, p *authtest.Provider) {
			tr := login(t, p, "alice")
			p.FailNext(authtest.Fault{IDToken: func(c map[string]any) { c["sub"] = "bob" }})
			if got := jwtPart(t, post(t, p, "/token", refreshForm(tr.RefreshToken)).IDToken, 1)["sub"]; got != "bob" {
				t.Errorf("refreshed ID token sub = %v, want bob", got)
			}
		}},
		{"IDToken hook calls the Provider", nil, func(t *testing.T, p *authtest.Provider) {
			p.FailNext(authtest.Fault{IDToken: func(c map[string]any) { c["exp"] = p.Now().Add(-time.Minute).Unix() }})
			expectVerifyError(t, p)
		}},
		{"UserinfoClaims", []authtest.Fault{{UserinfoClaims: func(c map[string]any) { c["sub"] = "mallory" }}}, func(t *testing.T, p *authtest.Provider) {
			tr := login(t, p, "alice")
			for _, want := range []string{"mallory", "alice"} {
				if _, claims := userinfo(t, p, tr.AccessToken); claims["sub"] != want {
					t.Errorf("GET /userinfo: sub %v, want %s", claims["sub"], want)
				}
			}
		}},
		{"JWKSStatus", []authtest.Fault{{JWKSStatus: 503}}, func(t *testing.T, p *authtest.Provider) {
			for _, want := range []int{503, 200} {
				res, err := p.Client().Get(p.URL + "/jwks")
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				if res.StatusCode != want {
					t.Errorf("GET /jwks: status %d, want %d", res.StatusCode, want)
				}
			}
		}},
		{"UserinfoStatus", []authtest.Fault{{UserinfoStatus: 500}, {UserinfoStatus: 401}}, func(t *testing.T, p *authtest.Provider) {
			tr := login(t, p, "alice")
			for _, want := range []int{500, 401, 200} {
				if res, _ := userinfo(t, p, tr.AccessToken); res.StatusCode != want {
					t.Errorf("GET /userinfo: status %d, want %d", res.StatusCode, want)
				}
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newProvider(t, authtest.Config{SigningAlg: "ES256"})
			for _, f := range tt.faults {
				p.FailNext(f)
			}
			tt.check(t, p)
		})
	}
}

// rawToken redeems a fresh code and returns the status and body.
func rawToken(t *testing.T, p *authtest.Provider) (int, string) {
	t.Helper()
	form := codeForm(code(t, p, "alice", authParams(p)))
	req, err := http.NewRequest(http.MethodPost, p.URL+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(p.ClientID, p.ClientSecret)
	res, body := apptest.Do(t, p.Client(), req)
	return res.StatusCode, body
}

// expectVerifyError logs in and checks that go-oidc rejects the ID token.
func expectVerifyError(t *testing.T, p *authtest.Provider) {
	t.Helper()
	expectVerifyErrorFor(t, p, login(t, p, "alice").IDToken)
}

func expectVerifyErrorFor(t *testing.T, p *authtest.Provider, idToken string) {
	t.Helper()
	if _, err := verify(t, p, idToken); err == nil {
		t.Errorf("Verify: got no error, want one")
	}
}

func TestFailNextPanics(t *testing.T) {
	t.Parallel()
	p := newProvider(t, authtest.Config{SigningAlg: "ES256"})
	defer func() {
		if recover() == nil {
			t.Errorf("FailNext(IDTokenSigning: HS256): no panic, want one")
		}
	}()
	p.FailNext(authtest.Fault{IDTokenSigning: "HS256"})
}

// keyMaterial returns the public key material of each key in the JWKS
// with the provider's SigningAlg (n for RSA, x for EC), which a new kid
// does not change.
func keyMaterial(t *testing.T, p *authtest.Provider) []string {
	t.Helper()
	var out []string
	for _, k := range signingKeys(t, p) {
		out = append(out, fmt.Sprint(k["n"], k["x"]))
	}
	return out
}

// signingKeys returns the keys in the JWKS with the algorithm of the
// provider's ID tokens, oldest first: the last one signs.
func signingKeys(t *testing.T, p *authtest.Provider) []map[string]any {
	t.Helper()
	alg := jwtPart(t, login(t, p, "alice").IDToken, 0)["alg"]
	var out []map[string]any
	for _, k := range jwks(t, p) {
		if k["alg"] == alg {
			out = append(out, k)
		}
	}
	return out
}

// TestKeysOfOpenProviders: providers open at once never share a key,
// and each RotateKey brings a key the provider has not used before. The
// key pool works alike for both algorithms; ES256 keys are cheap.
func TestKeysOfOpenProviders(t *testing.T) {
	t.Parallel()
	cfg := authtest.Config{SigningAlg: "ES256"}
	seen := make(map[string]string) // key material -> where
	kids := make(map[any]bool)
	// note checks the signing key, the last in the JWKS.
	note := func(p *authtest.Provider, where string) {
		t.Helper()
		keys, set := keyMaterial(t, p), signingKeys(t, p)
		m, kid := keys[len(keys)-1], set[len(set)-1]["kid"]
		if prev, ok := seen[m]; ok {
			t.Errorf("%s: signing key already used by %s", where, prev)
		}
		if kids[kid] {
			t.Errorf("%s: kid %v already used", where, kid)
		}
		seen[m], kids[kid] = where, true
	}
	a, b := newProvider(t, cfg), newProvider(t, cfg)
	note(a, "provider a")
	note(b, "provider b")
	for i := range 3 {
		a.RotateKey(true)
		note(a, fmt.Sprintf("provider a after RotateKey(true) %d", i+1))
	}
	a.RotateKey(false)
	note(a, "provider a after RotateKey(false)")
	if n := len(signingKeys(t, a)); n != 1 {
		t.Errorf("after RotateKey(false): %d ES256 keys in JWKS, want 1", n)
	}
}

// TestFreshKey: by default a provider may take over the key of one closed
// before it (with a new kid); with FreshKey it never does. Not parallel:
// no other test may take the closed provider's key in between.
func TestFreshKey(t *testing.T) {
	first := authtest.NewProvider(authtest.Config{SigningAlg: "ES256", RedirectURIs: []string{redirectURI}})
	key, kid := keyMaterial(t, first)[0], signingKeys(t, first)[0]["kid"]
	first.Close()

	fresh := newProvider(t, authtest.Config{SigningAlg: "ES256", FreshKey: true})
	if keyMaterial(t, fresh)[0] == key {
		t.Errorf("FreshKey provider: has the key of a closed provider, want a new one")
	}
	fresh.RotateKey(false)
	if keyMaterial(t, fresh)[0] == key {
		t.Errorf("FreshKey provider after RotateKey: has the key of a closed provider, want a new one")
	}
	reused := newProvider(t, authtest.Config{SigningAlg: "ES256"})
	if keyMaterial(t, reused)[0] != key {
		t.Errorf("default provider after a Close: a new key, want the closed provider's key (cheap)")
	}
	if signingKeys(t, reused)[0]["kid"] == kid {
		t.Errorf("default provider after a Close: kid %v of the closed provider, want a new one", kid)
	}
}
