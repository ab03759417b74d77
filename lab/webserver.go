package lab

import (
	"fmt"
	"net/http"
	"os"
)

// newWebServer is the handler of a not-a-registry profile. These are web
// servers, not imitations of a registry: Go's own file server over an
// empty folder (the folder of `python3 -m http.server`, with nothing
// under /v2/), or a site answering one HTML page to everything.
func newWebServer(p Profile, dir string) (http.Handler, error) {
	switch p {
	case ProfileNotARegistry404:
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("web server folder: %w", err)
		}
		return http.FileServer(http.Dir(dir)), nil
	case ProfileNotARegistryHTML:
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeBody(w, r, http.StatusOK, contentTypeHTML, intranetHTML)
		}), nil
	}
	return nil, fmt.Errorf("profile %s is not a web server", p)
}

// intranetHTML is the page the HTML web server answers to every path.
const intranetHTML = `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Example Corp intranet</title></head>
<body>
<h1>Example Corp intranet</h1>
<p>Welcome. Choose a service from the menu.</p>
<ul><li><a href="/wiki/">Wiki</a></li><li><a href="/tickets/">Tickets</a></li></ul>
</body>
</html>
`
