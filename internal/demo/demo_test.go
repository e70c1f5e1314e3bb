package demo

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseSecret(t *testing.T) {
	want := []byte("0123456789abcdef0123456789abcdef")
	for _, tt := range []struct {
		name, in string
		ok       bool
	}{
		{"hex", "3031323334353637383961626364656630313233343536373839616263646566", true},
		{"hex with newline", "3031323334353637383961626364656630313233343536373839616263646566\n", true},
		{"base64", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", true},
		{"base64 unpadded", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY", true},
		{"too short", "303132", false},
		{"plain text", "0123456789abcdef0123456789abcdef!", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSecret(tt.in)
			if tt.ok && (err != nil || !bytes.Equal(got, want)) {
				t.Errorf("parseSecret(%q) = %q, %v; want %q", tt.in, got, err, want)
			}
			if !tt.ok && err == nil {
				t.Errorf("parseSecret(%q) = %q, want an error", tt.in, got)
			}
		})
	}
	if _, err := parseSecret(strings.Repeat("ab", 31)); err == nil || !strings.Contains(err.Error(), "31 bytes") {
		t.Errorf("parseSecret(31 bytes) error = %v, want one that says 31 bytes", err)
	}
}
