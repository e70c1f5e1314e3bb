package auth

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/securecookie"
)

// This file holds everything about the cookies: key derivation, the compact
// session encoding, the securecookie codecs, splitting a large session over
// numbered cookies, and reading our cookies from the Cookie header without
// parsing the others.

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
	provider  string // name of the provider that signed the user in
	binding   string // that provider's issuer and client ID, hashed: see provider.binding
	family    string // random, set at login and kept by every refresh: which sign-in this is
	created   int64  // unix seconds: start of the absolute session lifetime
	tokenTime int64  // unix seconds: when the current access token was issued
	expiry    int64  // unix seconds: access token expiry; 0 when unknown
	tokenType string // "" means Bearer
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

	// payload is the ID token's decoded claims, filled by decoding; not stored.
	payload []byte
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
	s.access, _ = d.token()
	s.refresh, _ = d.token()
	s.idToken, _ = d.token()
	s.unpacked = true
}

const sessionVersion = 3

// marshal encodes s compactly: a version byte, then varints and
// length-prefixed strings. JWT-shaped tokens are stored with their base64url
// segments decoded, which saves a quarter of their size before securecookie
// encodes the whole value twice in base64.
func (s *session) marshal() []byte {
	s.unpack()
	n := 16 + len(s.provider) + len(s.binding) + len(s.family) + len(s.tokenType) + len(s.access) + len(s.refresh) + len(s.idToken) + len(s.extra)
	b := make([]byte, 0, n)
	b = append(b, sessionVersion)
	b = appendString(b, s.provider)
	b = appendString(b, s.binding)
	b = appendString(b, s.family)
	b = binary.AppendVarint(b, s.created)
	b = binary.AppendVarint(b, s.tokenTime)
	b = binary.AppendVarint(b, s.expiry)
	b = appendString(b, s.tokenType)
	b = appendToken(b, s.access)
	b = appendToken(b, s.refresh)
	b = appendToken(b, s.idToken)
	b = appendString(b, string(s.extra))
	return b
}

var errSessionFormat = errors.New("auth: malformed session")

// unmarshalSession decodes what marshal wrote. It never panics on garbage.
func unmarshalSession(b []byte) (*session, error) {
	if len(b) == 0 || b[0] != sessionVersion {
		return nil, errSessionFormat
	}
	d := decoder{b: b[1:]}
	s := &session{}
	s.provider = d.string()
	s.binding = d.string()
	s.family = d.string()
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

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = true
		d.b = nil
		return 0
	}
	d.b = d.b[n:]
	return v
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

// token reads what appendToken wrote. It also returns the decoded bytes of
// the second segment, which for a JWT is its JSON payload.
func (d *decoder) token() (string, []byte) {
	segs := d.uvarint()
	if segs > 16 {
		d.err = true
		return "", nil
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
		return "", nil
	}
	d.b = save
	out := make([]byte, 0, size)
	var payload []byte
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
		if i == 1 && mode == segBase64 {
			payload = raw
		}
	}
	return string(out), payload
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

// sessionParts returns the request's session cookie value split in its
// chunks, without allocating for a single-cookie session. ok is false when
// there is no session cookie or the chunks are incomplete.
func (j *cookieJar) sessionParts(h http.Header, buf *[maxChunks]string) (parts []string, present, ok bool) {
	// One pass over the Cookie header collects the session cookie and its
	// chunks (name.1 ... name.11); the first of each name wins, as in
	// net/http.
	var seen uint16
	for _, line := range h["Cookie"] {
		for len(line) > 0 {
			var part string
			if i := strings.IndexByte(line, ';'); i >= 0 {
				part, line = line[:i], line[i+1:]
			} else {
				part, line = line, ""
			}
			part = strings.TrimLeft(part, " \t")
			if len(part) <= len(j.name) || part[:len(j.name)] != j.name {
				continue
			}
			rest := part[len(j.name):]
			idx := 0
			switch {
			case rest[0] == '=':
				rest = rest[1:]
			case rest[0] == '.' && len(rest) >= 3 && rest[1] >= '1' && rest[1] <= '9' && rest[2] == '=':
				idx, rest = int(rest[1]-'0'), rest[3:]
			case rest[0] == '.' && len(rest) >= 4 && rest[1] == '1' && rest[2] >= '0' && rest[2] <= '9' && rest[3] == '=':
				idx, rest = 10+int(rest[2]-'0'), rest[4:]
			default:
				continue
			}
			if idx >= maxChunks || seen&(1<<idx) != 0 {
				continue
			}
			seen |= 1 << idx
			buf[idx] = trimCookieValue(rest)
		}
	}
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

func trimCookieValue(v string) string {
	v = strings.TrimRight(v, " \t")
	if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	return v
}

// cookieValue finds the value of the cookie name in the request's Cookie
// headers by scanning them, without building an *http.Cookie for every
// cookie the browser sends. It returns the first match, as net/http does.
func cookieValue(h http.Header, name string) (string, bool) {
	for _, line := range h["Cookie"] {
		for len(line) > 0 {
			var part string
			if i := strings.IndexByte(line, ';'); i >= 0 {
				part, line = line[:i], line[i+1:]
			} else {
				part, line = line, ""
			}
			part = strings.TrimLeft(part, " \t")
			if len(part) > len(name) && part[len(name)] == '=' && part[:len(name)] == name {
				return trimCookieValue(part[len(name)+1:]), true
			}
		}
	}
	return "", false
}

// cookiesWithPrefix returns the request's cookies whose names start with
// prefix. It is for the rare paths (login); the per-request path uses
// cookieValue.
func cookiesWithPrefix(r *http.Request, prefix string) []*http.Cookie {
	var out []*http.Cookie
	for _, c := range r.Cookies() {
		if strings.HasPrefix(c.Name, prefix) {
			out = append(out, c)
		}
	}
	return out
}
