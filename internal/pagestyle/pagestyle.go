// Package pagestyle is the look of every page that Gatehouse and authtest
// show a person: a centered card in the system font that fits a phone,
// light or dark as the system is, with no external assets and no script.
// A strict Content-Security-Policy allows its one inline stylesheet by the
// stylesheet's hash, StyleSource.
package pagestyle

import (
	"crypto/sha256"
	"encoding/base64"
)

// CSS is the stylesheet of every page, for a <style> element.
const CSS = `
:root{color-scheme:light dark;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
--bg:#f3f4f6;--card:#fff;--fg:#111827;--muted:#4b5563;--line:#d1d5db;--accent:#1d4ed8}
@media (prefers-color-scheme:dark){:root{--bg:#111827;--card:#1f2937;--fg:#f9fafb;--muted:#d1d5db;--line:#4b5563;--accent:#93c5fd}}
body{margin:0;min-height:100vh;display:grid;place-items:center;background:var(--bg);color:var(--fg)}
main{box-sizing:border-box;width:min(100% - 2rem,26rem);margin:1rem 0;padding:1.5rem;background:var(--card);border:1px solid var(--line);border-radius:.75rem}
h1{font-size:1.375rem;line-height:1.25;margin:0 0 .5rem;overflow-wrap:anywhere}
p{margin:0 0 1rem}
form{display:grid;gap:.5rem;margin:0 0 1rem}
button{box-sizing:border-box;width:100%;padding:.75rem 1rem;font:inherit;text-align:left;color:var(--fg);background:var(--card);border:1px solid var(--line);border-radius:.5rem;cursor:pointer}
button:hover{border-color:var(--accent)}
button.primary{text-align:center;color:var(--card);background:var(--accent);border-color:var(--accent);font-weight:600}
button.secondary{text-align:center}
small,.note{display:block;color:var(--muted);overflow-wrap:anywhere}
.note{font-size:.875rem;margin:1rem 0 0}
a{color:var(--accent)}
a.choice{display:block;box-sizing:border-box;width:100%;margin:0 0 .5rem;padding:.75rem 1rem;color:var(--fg);text-decoration:none;border:1px solid var(--line);border-radius:.5rem}
a.choice:hover{border-color:var(--accent)}
:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
`

// StyleSource is the Content-Security-Policy source that allows CSS.
var StyleSource = func() string {
	sum := sha256.Sum256([]byte(CSS))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}()
