package authtest_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gatehouse/auth/authtest"
)

// logoutReceiver is a client's backchannel_logout_uri: it records the
// logout tokens posted to it and answers with status and body.
type logoutReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	tokens []string
	status int
	body   string
}

func newLogoutReceiver(t *testing.T, status int, body string) *logoutReceiver {
	t.Helper()
	lr := &logoutReceiver{status: status, body: body}
	lr.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			t.Errorf("back-channel logout: %s with Content-Type %q, want a form POST", r.Method, r.Header.Get("Content-Type"))
		}
		lr.mu.Lock()
		lr.tokens = append(lr.tokens, r.PostFormValue("logout_token"))
		lr.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(lr.status)
		w.Write([]byte(lr.body))
	}))
	t.Cleanup(lr.Close)
	return lr
}

func (lr *logoutReceiver) received() []string {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	return slices.Clone(lr.tokens)
}

// verifyLogout checks a logout token the way a relying party does, with
// go-oidc and the provider's clock.
func verifyLogout(t *testing.T, p *authtest.Provider, raw string) (*oidc.LogoutToken, error) {
	t.Helper()
	ctx, _, v := goOIDC(t, p)
	return v.VerifyLogout(ctx, raw)
}

func TestBackchannelLogout(t *testing.T) {
	t.Parallel()
	lr := newLogoutReceiver(t, http.StatusOK, "")
	p := newProvider(t, authtest.Config{BackchannelLogoutURI: lr.URL})
	// Two provider sessions of alice (two browsers), each with tokens.
	var sids []string
	for range 2 {
		idt, err := verify(t, p, login(t, p, "alice").IDToken)
		if err != nil {
			t.Fatalf("verify ID token: %v", err)
		}
		var c struct{ Sid string }
		if err := idt.Claims(&c); err != nil || c.Sid == "" {
			t.Fatalf("ID token sid = %q (%v), want one", c.Sid, err)
		}
		sids = append(sids, c.Sid)
	}
	slices.Sort(sids)

	if err := p.BackchannelLogout("alice"); err != nil {
		t.Fatalf("BackchannelLogout(alice): %v", err)
	}
	got := lr.received()
	if len(got) != 2 {
		t.Fatalf("BackchannelLogout(alice) posted %d tokens, want 2 (one per sid)", len(got))
	}
	var gotSIDs, jtis []string
	for _, raw := range got {
		lt, err := verifyLogout(t, p, raw)
		if err != nil {
			t.Fatalf("VerifyLogout: %v", err)
		}
		if lt.Subject != "alice" {
			t.Errorf("logout token sub = %q, want alice", lt.Subject)
		}
		if lt.IssuedAt.IsZero() || !lt.Expiry.After(lt.IssuedAt) {
			t.Errorf("logout token iat %v, exp %v: want iat, and exp after it", lt.IssuedAt, lt.Expiry)
		}
		if h := jwtPart(t, raw, 0); h["typ"] != "logout+jwt" || h["kid"] == nil {
			t.Errorf("logout token header = %v, want typ logout+jwt and a kid", h)
		}
		if _, ok := jwtPart(t, raw, 1)["nonce"]; ok {
			t.Error("logout token has a nonce")
		}
		gotSIDs = append(gotSIDs, lt.SessionID)
		jtis = append(jtis, lt.TokenID)
	}
	slices.Sort(gotSIDs)
	if !slices.Equal(gotSIDs, sids) {
		t.Errorf("logout token sids = %v, want those of alice's ID tokens %v", gotSIDs, sids)
	}
	if jtis[0] == jtis[1] {
		t.Errorf("two logout tokens share jti %q", jtis[0])
	}

	// A user without tokens gets one token with sub only.
	if err := p.BackchannelLogout("bob"); err != nil {
		t.Fatalf("BackchannelLogout(bob): %v", err)
	}
	got = lr.received()
	if len(got) != 3 {
		t.Fatalf("BackchannelLogout(bob) posted %d tokens, want 1", len(got)-2)
	}
	lt, err := verifyLogout(t, p, got[2])
	if err != nil {
		t.Fatalf("VerifyLogout: %v", err)
	}
	if lt.Subject != "bob" || lt.SessionID != "" {
		t.Errorf("logout token for bob: sub %q, sid %q; want bob and no sid", lt.Subject, lt.SessionID)
	}
	// The provider's own state is untouched.
	if tr := post(t, p, "/token", refreshForm(login(t, p, "alice").RefreshToken)); tr.Status != http.StatusOK {
		t.Errorf("refresh after BackchannelLogout: status %d, want 200", tr.Status)
	}
}

func TestBackchannelLogoutErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		status  int
		body    string
		wantErr string // "" for success
	}{
		{"200", http.StatusOK, "", ""},
		{"204", http.StatusNoContent, "", ""},
		{"400 with error", http.StatusBadRequest, `{"error":"invalid_request","error_description":"bad token"}`, "answered 400 invalid_request (bad token)"},
		{"500", http.StatusInternalServerError, "oops", "answered 500"},
		{"redirect", http.StatusFound, "", "answered 302"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lr := newLogoutReceiver(t, tt.status, tt.body)
			p := newProvider(t, authtest.Config{})
			p.SetBackchannelLogoutURI(lr.URL)
			err := p.BackchannelLogout("alice")
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("BackchannelLogout: %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("BackchannelLogout: %v, want an error with %q", err, tt.wantErr)
			}
		})
	}
	t.Run("no URI", func(t *testing.T) {
		t.Parallel()
		p := newProvider(t, authtest.Config{})
		if err := p.BackchannelLogout("alice"); err == nil || !strings.Contains(err.Error(), "SetBackchannelLogoutURI") {
			t.Errorf("BackchannelLogout without URI: %v, want an error naming SetBackchannelLogoutURI", err)
		}
	})
}

func TestLogoutToken(t *testing.T) {
	t.Parallel()
	p := newProvider(t, authtest.Config{SigningAlg: "ES256"})
	for _, tt := range []struct {
		name    string
		claims  map[string]any
		wantErr string // from go-oidc's VerifyLogout; "" for valid
	}{
		{"sub", map[string]any{"sub": "alice"}, ""},
		{"sid", map[string]any{"sid": "s1"}, ""},
		{"neither sub nor sid", map[string]any{}, "'sub' claim, a 'sid' claim"},
		{"nonce", map[string]any{"sub": "alice", "nonce": "n"}, "nonce"},
		{"no event", map[string]any{"sub": "alice", "events": nil}, "backchannel-logout event"},
		{"no jti", map[string]any{"sub": "alice", "jti": nil}, "jti"},
		{"other audience", map[string]any{"sub": "alice", "aud": "someone-else"}, "audience"},
		{"other issuer", map[string]any{"sub": "alice", "iss": "https://evil.example"}, "different provider"},
		{"expired", map[string]any{"sub": "alice", "exp": p.Now().Add(-time.Minute).Unix()}, "expired"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			raw := p.LogoutToken(tt.claims)
			lt, err := verifyLogout(t, p, raw)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("VerifyLogout: %v, want a valid token", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("VerifyLogout: %v, want an error with %q", err, tt.wantErr)
			case err == nil && (lt.Issuer != p.URL || !slices.Equal(lt.Audience, []string{p.ClientID}) || lt.TokenID == ""):
				t.Errorf("logout token iss %q, aud %v, jti %q; want %s, [%s] and a jti", lt.Issuer, lt.Audience, lt.TokenID, p.URL, p.ClientID)
			}
		})
	}
	// Signed with the current key: a rotation without keepOld makes old
	// tokens fail.
	raw := p.LogoutToken(map[string]any{"sub": "alice"})
	p.RotateKey(false)
	if _, err := verifyLogout(t, p, raw); err == nil {
		t.Error("VerifyLogout of a token signed by a retired key: nil error, want one")
	}
	if _, err := verifyLogout(t, p, p.LogoutToken(map[string]any{"sub": "alice"})); err != nil {
		t.Errorf("VerifyLogout after RotateKey: %v", err)
	}
}
