package auth

import (
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/securecookie"
	"golang.org/x/oauth2"
)

// This file is the whole answer to "what does the cookie hold?": the
// session (and what it stores, in a compact binary form), the flow cookie
// of a login in progress, how both are sealed (gorilla/securecookie, with
// keys derived from the cookie secrets), their names and attributes,
// splitting a large session over numbered cookies, and reading our
// cookies from the Cookie header without parsing the others.
//
// A session cookie holds, sealed (AES-256-CTR and HMAC-SHA256, with the
// time it was sealed): a version byte, the provider's name, a hash of
// its issuer and client ID (see provider.binding), a random family ID
// kept by every refresh of one sign-in, when the session began, when its
// access token was issued and when it expires, the token type, the access,
// refresh and ID tokens (JWT segments stored decoded), the claims the
// ID token lacks (from userinfo; for plain OAuth 2.0, all of them), and
// the scope granted, when it differs from the scope requested. The
// user's claims are read back from the ID token, so nothing is stored
// twice. With a Store, the cookie holds only the session's random ID, and
// the Store holds the same bytes.

// maxCookieBytes is the size one Set-Cookie header line (name, value and
// attributes) stays under; browsers keep at least 4096 bytes per cookie.
const maxCookieBytes = 4000

// maxChunks bounds how many cookies one session may take.
const maxChunks = 12

// session is what a signed-in browser carries. It stores nothing twice: the
// user's claims are read back from the ID token, which was verified when it
// was received, so only claims the ID token lacks (from userinfo, or from a
// plain OAuth 2.0 user API) are kept in extra.
type session struct {
	provider  string  // name of the provider that signed the user in
	binding   [8]byte // that provider's issuer and client ID, hashed: see provider.binding
	family    [8]byte // random, set at login and kept by every refresh: which sign-in this is
	created   int64   // unix seconds: start of the absolute session lifetime
	tokenTime int64   // unix seconds: when the current access token was issued
	expiry    int64   // unix seconds: access token expiry; 0 when unknown
	tokenType string  // "" means Bearer
	// The tokens. A decoded session leaves them packed, as stored, until
	// unpack builds the strings: most requests never read them, and
	// rebuilding a JWT's text costs microseconds. Read them through
	// sessionState.full, which unpacks once.
	access   string
	refresh  string
	idToken  string
	packed   []byte // the stored tokens, nil for a session built in memory
	unpacked bool
	hasRT    bool // a decoded session has a refresh token

	extra []byte // JSON object of claims absent from the ID token, or nil

	// scope is the scope the provider granted, space-separated, when it
	// said so (RFC 6749 §5.1) and it differs from the scope requested;
	// "" means as requested. RequireScope reads it.
	scope string

	// payload is the ID token's decoded claims, filled by decoding; not stored.
	payload []byte
}

// setTokens puts a token response's tokens in s: the access token, its
// type and expiry (counted by our clock from expires_in when the provider
// sent it), and a new refresh token if there is one.
func (s *session) setTokens(tok *oauth2.Token, now time.Time) {
	s.tokenTime = now.Unix()
	s.access = tok.AccessToken
	s.tokenType = ""
	if tok.TokenType != "" && http.CanonicalHeaderKey(tok.TokenType) != "Bearer" {
		s.tokenType = tok.TokenType // "" means Bearer
	}
	switch {
	case tok.ExpiresIn > 0:
		s.expiry = now.Unix() + tok.ExpiresIn
	case !tok.Expiry.IsZero():
		s.expiry = tok.Expiry.Unix()
	default:
		s.expiry = 0 // unknown
	}
	if tok.RefreshToken != "" {
		s.refresh = tok.RefreshToken
	}
	// Without a scope, the grant is as requested (at login) or as before
	// (at a refresh): RFC 6749 §5.1 and §6.
	if scope, _ := tok.Extra("scope").(string); strings.TrimSpace(scope) != "" {
		s.scope = normalizeScope(scope)
	}
}

// canRefresh reports whether the session has a refresh token, without
// unpacking it.
func (s *session) canRefresh() bool { return s.hasRT || s.refresh != "" }

// unpack builds the token strings of a decoded session. It is not safe for
// concurrent use: shared sessions go through sessionState.full.
func (s *session) unpack() {
	if s.unpacked || s.packed == nil {
		return
	}
	d := decoder{b: s.packed}
	s.access = d.token()
	s.refresh = d.token()
	s.idToken = d.token()
	s.unpacked = true
}

// sessionVersion is the format of a session; sessionScopeVersion is the
// same with the granted scope after the extra claims, written only for a
// session whose scope differs from the one requested, so that every other
// session stays readable by versions that know only sessionVersion.
const (
	sessionVersion      = 3
	sessionScopeVersion = 4
)

// marshal encodes s compactly: a version byte, then varints and
// length-prefixed strings. JWT-shaped tokens are stored with their base64url
// segments decoded, which saves a quarter of their size before securecookie
// encodes the whole value twice in base64.
func (s *session) marshal() []byte {
	s.unpack()
	n := 32 + len(s.provider) + len(s.tokenType) + len(s.access) + len(s.refresh) + len(s.idToken) + len(s.extra)
	b := make([]byte, 0, n+len(s.scope))
	if s.scope == "" {
		b = append(b, sessionVersion)
	} else {
		b = append(b, sessionScopeVersion)
	}
	b = appendString(b, s.provider)
	b = append(b, s.binding[:]...)
	b = append(b, s.family[:]...)
	b = binary.AppendVarint(b, s.created)
	b = binary.AppendVarint(b, s.tokenTime)
	b = binary.AppendVarint(b, s.expiry)
	b = appendString(b, s.tokenType)
	b = appendToken(b, s.access)
	b = appendToken(b, s.refresh)
	b = appendToken(b, s.idToken)
	b = appendString(b, string(s.extra))
	if s.scope != "" {
		b = appendString(b, s.scope)
	}
	return b
}

var errSessionFormat = errors.New("auth: malformed session")

// unmarshalSession decodes what marshal wrote. It never panics on garbage.
func unmarshalSession(b []byte) (*session, error) {
	if len(b) == 0 || (b[0] != sessionVersion && b[0] != sessionScopeVersion) {
		return nil, errSessionFormat
	}
	d := decoder{b: b[1:]}
	s := &session{}
	s.provider = d.string()
	copy(s.binding[:], d.take(8))
	copy(s.family[:], d.take(8))
	s.created = d.varint()
	s.tokenTime = d.varint()
	s.expiry = d.varint()
	s.tokenType = d.string()
	start := d.b
	d.skipToken()
	n, _ := d.skipToken()
	s.hasRT = n > 0
	_, s.payload = d.skipToken()
	s.packed = start[:len(start)-len(d.b)]
	if extra := d.bytes(); len(extra) > 0 {
		s.extra = extra
	}
	if b[0] == sessionScopeVersion {
		if s.scope = d.string(); s.scope == "" {
			return nil, errSessionFormat
		}
	}
	if d.err || len(d.b) != 0 {
		return nil, errSessionFormat
	}
	return s, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendToken writes a token as a segment count and its dot-separated
// segments, each flagged as stored raw or base64url-decoded. Only segments
// that re-encode to exactly the same text are decoded, so the token read back
// is byte for byte the token written.
func appendToken(b []byte, tok string) []byte {
	segs := strings.Count(tok, ".") + 1
	if tok == "" {
		segs = 0
	}
	b = binary.AppendUvarint(b, uint64(segs))
	for i := 0; i < segs; i++ {
		seg := tok
		if j := strings.IndexByte(tok, '.'); j >= 0 {
			seg, tok = tok[:j], tok[j+1:]
		}
		b = appendSegment(b, seg)
	}
	return b
}

// Segment encodings: a header uvarint holds the stored length << 2 | mode.
const (
	segRaw    = 0 // the text as is
	segBase64 = 1 // canonical base64url, stored decoded
	segPrefix = 2 // base64url whose whole quads are stored decoded, then one byte of tail length and the 1-3 remaining characters as text
)

// appendSegment stores seg decoded when it is base64url: whole when it
// re-encodes to the same text (every JWT segment), else its whole 4-char
// groups, which always do, plus the remaining characters as text (opaque
// tokens of random characters).
func appendSegment(b []byte, seg string) []byte {
	// encoding/base64 skips \r and \n even in strict mode, so text with
	// them would not read back as written.
	if len(seg) >= 4 && !strings.ContainsAny(seg, "\r\n") {
		if raw, err := base64.RawURLEncoding.Strict().DecodeString(seg); err == nil {
			b = binary.AppendUvarint(b, uint64(len(raw))<<2|segBase64)
			return append(b, raw...)
		}
		q := len(seg) &^ 3
		if raw, err := base64.RawURLEncoding.DecodeString(seg[:q]); err == nil {
			b = binary.AppendUvarint(b, uint64(len(raw))<<2|segPrefix)
			b = append(b, raw...)
			b = append(b, byte(len(seg)-q))
			return append(b, seg[q:]...)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(seg))<<2|segRaw)
	return append(b, seg...)
}

type decoder struct {
	b   []byte
	err bool
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = true
		d.b = nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

// varint reads what binary.AppendVarint wrote: a zig-zag encoded uvarint.
func (d *decoder) varint() int64 {
	u := d.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

func (d *decoder) take(n uint64) []byte {
	if n > uint64(len(d.b)) {
		d.err = true
		d.b = nil
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte { return d.take(d.uvarint()) }

func (d *decoder) string() string { return string(d.bytes()) }

// token reads what appendToken wrote.
func (d *decoder) token() string {
	segs := d.uvarint()
	if segs > 16 {
		d.err = true
		return ""
	}
	// Measure first so the token is built with one allocation.
	save := d.b
	size := 0
	for i := uint64(0); i < segs && !d.err; i++ {
		raw, tail, mode := d.segment()
		if mode == segRaw {
			size += len(raw)
		} else {
			size += base64.RawURLEncoding.EncodedLen(len(raw)) + len(tail)
		}
		if i > 0 {
			size++
		}
	}
	if d.err || segs == 0 {
		return ""
	}
	d.b = save
	out := make([]byte, 0, size)
	for i := uint64(0); i < segs; i++ {
		raw, tail, mode := d.segment()
		if i > 0 {
			out = append(out, '.')
		}
		if mode == segRaw {
			out = append(out, raw...)
		} else {
			out = base64.RawURLEncoding.AppendEncode(out, raw)
			out = append(out, tail...)
		}
	}
	return string(out)
}

// skipToken steps over a token and returns its segment count and the
// decoded bytes of its second segment when stored as base64 (for a JWT, its
// JSON payload).
func (d *decoder) skipToken() (segs uint64, payload []byte) {
	segs = d.uvarint()
	if segs > 16 {
		d.err = true
		return 0, nil
	}
	for i := uint64(0); i < segs && !d.err; i++ {
		raw, _, mode := d.segment()
		if i == 1 && mode == segBase64 {
			payload = raw
		}
	}
	return segs, payload
}

// segment reads one segment written by appendSegment.
func (d *decoder) segment() (raw, tail []byte, mode uint64) {
	h := d.uvarint()
	mode = h & 3
	raw = d.take(h >> 2)
	switch mode {
	case segRaw, segBase64:
	case segPrefix:
		if len(raw)%3 != 0 {
			d.err = true
			return nil, nil, segRaw
		}
		n := d.take(1)
		if len(n) == 1 && n[0] > 3 {
			d.err = true
		}
		if len(n) == 1 {
			tail = d.take(uint64(n[0]))
		}
	default:
		d.err = true
	}
	if d.err {
		return nil, nil, segRaw
	}
	return raw, tail, mode
}

// deriveKeys turns each secret into an HMAC-SHA256 key and an AES-256 key
// with HKDF, so users hand us one secret and the two keys are independent.
func deriveKeys(secret []byte) (hashKey, blockKey []byte, err error) {
	hashKey, err = hkdf.Key(sha256.New, secret, nil, "gatehouse/auth cookie hmac-sha256", 32)
	if err != nil {
		return nil, nil, err
	}
	blockKey, err = hkdf.Key(sha256.New, secret, nil, "gatehouse/auth cookie aes-256", 32)
	return hashKey, blockKey, err
}

// newCodecs returns one securecookie codec per secret: the first encodes, all
// decode. maxAge bounds the age of any value they accept.
func newCodecs(secrets [][]byte, maxAge time.Duration, sz securecookie.Serializer) ([]securecookie.Codec, error) {
	var cs []securecookie.Codec
	for _, s := range secrets {
		hk, bk, err := deriveKeys(s)
		if err != nil {
			return nil, fmt.Errorf("auth: derive cookie keys: %w", err)
		}
		c := securecookie.New(hk, bk)
		c.MaxAge(int(maxAge / time.Second))
		c.MaxLength(0) // we split long values over several cookies ourselves
		c.SetSerializer(sz)
		cs = append(cs, c)
	}
	return cs, nil
}

// rawSerializer passes bytes through: values are marshalled before they
// reach securecookie, so securecookie only authenticates and encrypts.
type rawSerializer struct{}

func (rawSerializer) Serialize(src any) ([]byte, error) {
	if b, ok := src.([]byte); ok {
		// A copy: securecookie encrypts the serialized bytes in place.
		return append([]byte(nil), b...), nil
	}
	return nil, errors.New("auth: cookie value is not []byte")
}

func (rawSerializer) Deserialize(src []byte, dst any) error {
	p, ok := dst.(*[]byte)
	if !ok {
		return errors.New("auth: cookie destination is not *[]byte")
	}
	*p = src
	return nil
}

// cookieJar holds the settings shared by every cookie we write.
type cookieJar struct {
	name   string   // session cookie; chunks are name.1, name.2, ...
	chunk  []string // precomputed chunk names, chunk[0] == name
	flow   string   // prefix of flow cookie names
	path   string   // session cookie path
	fpath  string   // flow cookie path
	domain string   // session cookie domain; flow cookies are host-only
	secure bool
}

// newCookieJar returns the jar for session cookies called name. Flow
// cookies are host-only, and over https they are __Host- cookies with
// Path=/, whatever the session cookie's settings: a cookie that another
// host could set (a sibling subdomain, with Domain=parent) could plant the
// attacker's login in the victim's browser. Over http they live on the
// auth paths only (authPath, shared by the login and callback paths).
func newCookieJar(name, path, domain string, secure bool, authPath string) cookieJar {
	base := strings.TrimPrefix(strings.TrimPrefix(name, "__Host-"), "__Secure-")
	j := cookieJar{name: name, flow: base + "_flow_", path: path, fpath: authPath, domain: domain, secure: secure}
	if secure {
		j.flow, j.fpath = "__Host-"+j.flow, "/"
	}
	j.chunk = make([]string, maxChunks)
	j.chunk[0] = name
	for i := 1; i < maxChunks; i++ {
		j.chunk[i] = name + "." + strconv.Itoa(i)
	}
	return j
}

// cookie returns a session cookie.
func (j *cookieJar) cookie(name, value, path string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     path,
		Domain:   j.domain,
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   j.secure,
		SameSite: http.SameSiteLaxMode,
	}
}

// flowCookie returns a flow cookie: host-only, on the flow path.
func (j *cookieJar) flowCookie(name, value string, maxAge int) *http.Cookie {
	c := j.cookie(name, value, j.fpath, maxAge)
	c.Domain = ""
	return c
}

// chunkSize is how many value bytes fit in one cookie next to its name and
// attributes.
func (j *cookieJar) chunkSize() int {
	attrs := len(j.cookie(j.chunk[maxChunks-1], "", j.path, 1<<30).String())
	return maxCookieBytes - attrs
}

// writeSession sets the session cookie(s) for value. A value larger than one
// cookie is split: the first cookie starts with the chunk count and a dot
// (never part of a securecookie value), the rest follow as name.1, name.2...
// Chunks the browser holds beyond the new count are deleted.
func (j *cookieJar) writeSession(w http.ResponseWriter, r *http.Request, value string, maxAge int) error {
	size := j.chunkSize()
	var parts []string
	if len(value) <= size {
		parts = []string{value}
	} else {
		// The count prefix ("n.") is part of the value: two bytes, or
		// three from ten chunks on, which may take one more chunk.
		n := 2
		for (len(value)+len(strconv.Itoa(n))+1+size-1)/size > n {
			n++
		}
		if n >= maxChunks {
			return fmt.Errorf("auth: session of %d bytes exceeds %d cookies; use a server-side Store", len(value), maxChunks)
		}
		value = strconv.Itoa(n) + "." + value
		for len(value) > 0 {
			k := min(size, len(value))
			parts = append(parts, value[:k])
			value = value[k:]
		}
	}
	for i, p := range parts {
		http.SetCookie(w, j.cookie(j.chunk[i], p, j.path, maxAge))
	}
	j.deleteChunks(w, r, len(parts))
	return nil
}

// deleteChunks deletes the chunk cookies from index from on that the
// request carries.
func (j *cookieJar) deleteChunks(w http.ResponseWriter, r *http.Request, from int) {
	for i := max(from, 1); i < maxChunks; i++ {
		if _, ok := cookieValue(r.Header, j.chunk[i]); ok {
			http.SetCookie(w, j.cookie(j.chunk[i], "", j.path, -1))
		}
	}
}

// clearSession deletes the session cookie and every chunk that the
// request carries, and nothing else: deleting a cookie the request did not
// carry (a cross-site POST carries no Lax cookie) would let another site
// sign the user out.
func (j *cookieJar) clearSession(w http.ResponseWriter, r *http.Request) {
	if _, ok := cookieValue(r.Header, j.name); ok {
		http.SetCookie(w, j.cookie(j.name, "", j.path, -1))
	}
	j.deleteChunks(w, r, 1)
}

// sessionParts returns the session cookie value of the Cookie header
// lines, split in its chunks, without allocating for a single-cookie session. present reports
// whether the request has a session cookie; ok is false when its chunks
// are incomplete or malformed.
func (j *cookieJar) sessionParts(lines []string, buf *[maxChunks]string) (parts []string, present, ok bool) {
	// One pass over the Cookie header collects the session cookie and its
	// chunks (name.1 ... name.11); the first of each name wins, as in
	// net/http.
	var seen uint16
	scanLines(lines, func(name, value string) bool {
		if idx := j.chunkIndex(name); idx >= 0 && seen&(1<<idx) == 0 {
			seen |= 1 << idx
			buf[idx] = value
		}
		return true
	})
	if seen&1 == 0 {
		return nil, false, false
	}
	first := buf[0]
	dot := strings.IndexByte(first, '.')
	if dot < 0 {
		return buf[:1], true, first != ""
	}
	n, err := strconv.Atoi(first[:dot])
	if err != nil || n < 2 || n >= maxChunks || seen&(1<<n-1) != 1<<n-1 {
		return nil, true, false
	}
	buf[0] = first[dot+1:]
	return buf[:n], true, true
}

// chunkIndex returns which chunk of the session a cookie named name is
// (0 for the session cookie itself), or -1 when it is none.
func (j *cookieJar) chunkIndex(name string) int {
	if len(name) < len(j.name) || name[:len(j.name)] != j.name {
		return -1
	}
	switch rest := name[len(j.name):]; {
	case rest == "":
		return 0
	case len(rest) == 2 && rest[0] == '.' && rest[1] >= '1' && rest[1] <= '9':
		return int(rest[1] - '0')
	case len(rest) == 3 && rest[0] == '.' && rest[1] == '1' && rest[2] >= '0' && rest[2] <= '9' && 10+int(rest[2]-'0') < maxChunks:
		return 10 + int(rest[2]-'0')
	}
	return -1
}

// scanCookies calls fn with the name and value of each cookie in the
// request's Cookie headers, in order, until fn returns false. It reads the
// headers in place: no *http.Cookie is built for the cookies of others.
func scanCookies(h http.Header, fn func(name, value string) bool) {
	scanLines(h["Cookie"], fn)
}

// scanLines is scanCookies over the Cookie header lines.
func scanLines(lines []string, fn func(name, value string) bool) {
	for _, line := range lines {
		for line != "" {
			part := line
			if i := strings.IndexByte(line, ';'); i >= 0 {
				part, line = line[:i], line[i+1:]
			} else {
				line = ""
			}
			for part != "" && (part[0] == ' ' || part[0] == '\t') {
				part = part[1:]
			}
			if eq := strings.IndexByte(part, '='); eq >= 0 && !fn(part[:eq], trimCookieValue(part[eq+1:])) {
				return
			}
		}
	}
}

func trimCookieValue(v string) string {
	for v != "" && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	return v
}

// cookieValue returns the value of the first cookie called name, as
// net/http does.
func cookieValue(h http.Header, name string) (value string, found bool) {
	scanCookies(h, func(n, v string) bool {
		if n == name {
			value, found = v, true
		}
		return !found
	})
	return value, found
}

// flowLifetime bounds how long a login may take at the provider.
const flowLifetime = 10 * time.Minute

// maxFlows caps the flow cookies a browser holds at once (the oldest goes
// first), so a burst of logins cannot grow the Cookie header past what
// servers accept.
const maxFlows = 5

// flowState is one login attempt, kept in its own short-lived encrypted
// cookie (named by its state) so several tabs can log in at the same time.
type flowState struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Next     string `json:"r"`
	Created  int64  `json:"t"`
	Provider string `json:"p"`
	// CrossSite: the provider answers with a cross-site POST
	// (form_post), which only a SameSite=None cookie goes with.
	CrossSite bool `json:"x,omitempty"`
}

// flowCookies reads and writes flow cookies.
type flowCookies struct {
	jar    *cookieJar
	codecs []securecookie.Codec
	now    func() time.Time
}

// name names the flow cookie of a state value.
func (fc *flowCookies) name(state string) string {
	return fc.jar.flow + state[:16]
}

// set seals f into its flow cookie, after deleting the browser's flow
// cookies that are expired or unreadable, and the oldest live ones beyond
// maxFlows-1. A return path long (or escaped) enough to push the cookie
// past what browsers keep would make the login fail: it goes home instead.
func (fc *flowCookies) set(w http.ResponseWriter, r *http.Request, f *flowState) error {
	type live struct {
		name    string
		created int64
	}
	var keep []live
	scanCookies(r.Header, func(name, value string) bool {
		if strings.HasPrefix(name, fc.jar.flow) {
			var old flowState
			if fc.open(name, value, &old) {
				keep = append(keep, live{name, old.Created})
			} else {
				http.SetCookie(w, fc.jar.flowCookie(name, "", -1))
			}
		}
		return true
	})
	if len(keep) >= maxFlows {
		slices.SortFunc(keep, func(a, b live) int { return int(a.created - b.created) })
		for _, l := range keep[:len(keep)-(maxFlows-1)] {
			http.SetCookie(w, fc.jar.flowCookie(l.name, "", -1))
		}
	}
	name := fc.name(f.State)
	v, err := securecookie.EncodeMulti(name, f, fc.codecs...)
	if err == nil && len(name)+len(v) > maxCookieBytes-100 {
		f.Next = "/"
		v, err = securecookie.EncodeMulti(name, f, fc.codecs...)
	}
	if err != nil {
		return fmt.Errorf("auth: encode flow cookie: %w", err)
	}
	c := fc.jar.flowCookie(name, v, int(flowLifetime/time.Second))
	if f.CrossSite {
		c.SameSite = http.SameSiteNoneMode // Secure: form_post needs https
	}
	http.SetCookie(w, c)
	return nil
}

// take returns the flow of state from this browser's flow cookie, and
// deletes the cookie whatever happens next: replaying a callback finds no
// flow. The state is compared in constant time, and the flow must be live.
func (fc *flowCookies) take(w http.ResponseWriter, r *http.Request, state string) (*flowState, bool) {
	if len(state) < 16 {
		return nil, false
	}
	name := fc.name(state)
	v, ok := cookieValue(r.Header, name)
	if !ok {
		return nil, false
	}
	http.SetCookie(w, fc.jar.flowCookie(name, "", -1))
	var f flowState
	if !fc.open(name, v, &f) || subtle.ConstantTimeCompare([]byte(f.State), []byte(state)) != 1 {
		return nil, false
	}
	return &f, true
}

// any reports whether the request carries any flow cookie.
func (fc *flowCookies) any(r *http.Request) (found bool) {
	scanCookies(r.Header, func(name, _ string) bool {
		found = strings.HasPrefix(name, fc.jar.flow)
		return !found
	})
	return found
}

// open decodes a flow cookie, and reports whether it is a live flow.
func (fc *flowCookies) open(name, value string, f *flowState) bool {
	return securecookie.DecodeMulti(name, value, f, fc.codecs...) == nil &&
		fc.now().Sub(time.Unix(f.Created, 0)) < flowLifetime
}
