package authtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	jose "github.com/go-jose/go-jose/v4"
)

// signingKey is one key pair of the provider. It never changes.
type signingKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

func parseAlg(s string) (jose.SignatureAlgorithm, error) {
	switch alg := jose.SignatureAlgorithm(s); alg {
	case jose.RS256, jose.ES256:
		return alg, nil
	}
	return "", fmt.Errorf("authtest: unsupported Config.SigningAlg %q", s)
}

func newSigningKey(alg jose.SignatureAlgorithm) (*signingKey, error) {
	var priv crypto.Signer
	var err error
	if alg == jose.ES256 {
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		return nil, err
	}
	return &signingKey{kid: rand.Text()[:16], alg: alg, priv: priv}, nil
}

// keyPool holds the private keys of one algorithm that no open provider
// holds. Generating a 2048-bit RSA key takes about 100ms of CPU, more
// than everything else a typical test does, so providers without
// Config.FreshKey take their keys from here and give them back on
// Close: a test binary generates only as many keys as it has providers
// (and rotations) open at once, while no two open providers ever share
// a key. Each key gets a new kid whenever a provider takes it, so a
// token of a closed provider names a kid no later one publishes.
type keyPool struct {
	mu   sync.Mutex
	free []crypto.Signer
}

var keyPools = map[jose.SignatureAlgorithm]*keyPool{jose.RS256: {}, jose.ES256: {}}

// newKey returns a key of alg that no open provider holds and that this
// provider has never used: a new one with Config.FreshKey, else one from
// the pool, which Close gives back.
func (p *Provider) newKey(alg jose.SignatureAlgorithm) (*signingKey, error) {
	if p.cfg.FreshKey {
		return newSigningKey(alg)
	}
	pool := keyPools[alg]
	pool.mu.Lock()
	var priv crypto.Signer
	if n := len(pool.free); n > 0 {
		priv = pool.free[n-1]
		pool.free = pool.free[:n-1]
	}
	pool.mu.Unlock()
	if priv == nil {
		k, err := newSigningKey(alg)
		if err != nil {
			return nil, err
		}
		priv = k.priv
	}
	p.leaseMu.Lock()
	p.leased[alg] = append(p.leased[alg], priv)
	p.leaseMu.Unlock()
	return &signingKey{kid: rand.Text()[:16], alg: alg, priv: priv}, nil
}

// releaseKeys gives the provider's pool keys back, once it is closed.
func (p *Provider) releaseKeys() {
	p.leaseMu.Lock()
	defer p.leaseMu.Unlock()
	for alg, keys := range p.leased {
		pool := keyPools[alg]
		pool.mu.Lock()
		pool.free = append(pool.free, keys...)
		pool.mu.Unlock()
	}
	clear(p.leased)
}

// rs256Key is the RS256 key that providers with another SigningAlg
// publish besides their own keys and never sign with (see
// Config.SigningAlg), one for the whole process.
var rs256Key = sync.OnceValues(func() (*signingKey, error) { return newSigningKey(jose.RS256) })

func (k *signingKey) public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Use: "sig", Algorithm: string(k.alg)}
}

// sign returns payload as a compact JWS with typ "JWT", and with the
// key's kid in the header if withKID.
func (k *signingKey) sign(payload []byte, withKID bool) (string, error) {
	return k.signTyped(payload, withKID, "JWT")
}

// signTyped is sign with another typ header, such as "logout+jwt".
func (k *signingKey) signTyped(payload []byte, withKID bool, typ jose.ContentType) (string, error) {
	var key any = k.priv
	if withKID {
		key = jose.JSONWebKey{Key: k.priv, KeyID: k.kid}
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: key}, (&jose.SignerOptions{}).WithType(typ))
	if err != nil {
		return "", err
	}
	jws, err := s.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// mustSignClaims signs the claims c, with the key's kid, as a JWT of type
// typ; it panics, naming the exported method fn, if that fails.
func (k *signingKey) mustSignClaims(fn string, c map[string]any, typ jose.ContentType) string {
	payload, err := json.Marshal(c)
	if err != nil {
		panic(fmt.Sprintf("authtest: %s: %v", fn, err))
	}
	tok, err := k.signTyped(payload, true, typ)
	if err != nil {
		panic(fmt.Sprintf("authtest: %s: signing: %v", fn, err))
	}
	return tok
}

// setClaims sets the claims of edits in c; a nil value deletes the claim.
func setClaims(c, edits map[string]any) {
	for k, v := range edits {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
}

// signIDToken signs claims with key, or breaks the result as
// Fault.IDTokenSigning says.
func (p *Provider) signIDToken(key *signingKey, claims map[string]any, fault string) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	switch fault {
	case "none":
		enc := base64.RawURLEncoding
		return enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc.EncodeToString(payload) + ".", nil
	case "no-kid":
		return key.sign(payload, false)
	case "unknown-key":
		other, err := p.newKey(key.alg) // never in this provider's JWKS
		if err != nil {
			return "", err
		}
		return other.sign(payload, true)
	case "bad-signature":
		jws, err := key.sign(payload, true)
		if err != nil {
			return "", err
		}
		i := strings.LastIndexByte(jws, '.')
		sig, err := base64.RawURLEncoding.DecodeString(jws[i+1:])
		if err != nil {
			return "", err
		}
		sig[len(sig)/2] ^= 0xff
		return jws[:i+1] + base64.RawURLEncoding.EncodeToString(sig), nil
	}
	return key.sign(payload, true)
}

// signingKey returns the current key. The caller holds p.mu.
func (p *Provider) signingKey() *signingKey {
	return p.keys[len(p.keys)-1]
}

// RotateKey makes a new key with a new kid the signing key. With keepOld,
// the keys published so far stay in the JWKS, so tokens they signed still
// verify; without it, the JWKS holds only the new key (and, with
// SigningAlg ES256, the RS256 key that signs nothing, which stays).
//
// The new key is one this provider has never used, and no other open
// provider holds. Without Config.FreshKey it comes from a pool of keys
// that closed providers gave back, so it usually costs nothing (see
// [Config].FreshKey).
func (p *Provider) RotateKey(keepOld bool) {
	p.mu.Lock()
	alg := p.signingKey().alg
	p.mu.Unlock()
	k, err := p.newKey(alg)
	if err != nil {
		panic(fmt.Sprintf("authtest: generating signing key: %v", err))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if keepOld {
		p.keys = append(p.keys, k)
	} else {
		p.keys = []*signingKey{k}
	}
}

func (p *Provider) jwks(w http.ResponseWriter, r *http.Request) {
	var set jose.JSONWebKeySet
	p.mu.Lock()
	if f := p.faults.jwks.pop(); f.JWKSStatus != 0 {
		p.mu.Unlock()
		writeJSON(w, f.JWKSStatus, map[string]string{"error": "server_error", "error_description": "authtest: injected fault"})
		return
	}
	for _, k := range p.keys {
		set.Keys = append(set.Keys, k.public())
	}
	if p.rs256 != nil {
		set.Keys = append(set.Keys, p.rs256.public())
	}
	p.mu.Unlock()
	writeJSON(w, http.StatusOK, set)
}

// verifyIDToken checks that raw is a JWT the provider signed with a key
// it still publishes and that names it as issuer, and returns its claims.
// It ignores expiry.
func (p *Provider) verifyIDToken(raw string) (map[string]any, error) {
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		return nil, err
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("not a compact JWS")
	}
	kid := jws.Signatures[0].Header.KeyID
	p.mu.Lock()
	keys := p.keys
	p.mu.Unlock()
	for _, k := range keys {
		if kid != "" && kid != k.kid {
			continue
		}
		payload, err := jws.Verify(k.priv.Public())
		if err != nil {
			continue
		}
		var claims map[string]any
		if err := json.Unmarshal(payload, &claims); err != nil {
			return nil, err
		}
		if claims["iss"] != p.URL {
			return nil, errors.New("issued by someone else")
		}
		return claims, nil
	}
	return nil, errors.New("signature does not verify with any published key")
}
