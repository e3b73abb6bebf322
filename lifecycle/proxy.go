package lifecycle

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ptreactor/ptreactor/codec/upstream"
)

// parseProxyURI validates TOR_PT_PROXY (pt-spec 3.2.2) and returns it as the typed proxy the
// reactor's upstream dialers take as it is: the scheme (socks5, socks4a or http), the
// address (an IP literal with an explicit port) and the credentials. This is the one place
// a proxy is validated.
//
// tor builds the URI itself, without percent-encoding the user name or password, so the
// text is split by hand rather than by url.Parse: userinfo ends at the last '@', and the
// user name at the first ':' within it. Path, query and fragment are refused, as is a host
// name: the proxy must be reached without a DNS lookup.
func parseProxyURI(raw string) (*upstream.Proxy, error) {
	for i := 0; i < len(raw); i++ {
		if raw[i] < 0x20 || raw[i] >= 0x7f {
			return nil, errors.New("proxy URI contains a control or non-ASCII byte")
		}
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || scheme == "" {
		return nil, errors.New("proxy URI is not an absolute URI")
	}
	scheme = strings.ToLower(scheme)
	switch scheme {
	case "socks5", "socks4a", "http":
	default:
		return nil, fmt.Errorf("proxy URI has invalid scheme: %s", scheme)
	}
	if strings.ContainsAny(rest, "/?#") {
		// A '/' can only be a path here: tor never puts one in the userinfo.
		return nil, errors.New("proxy URI has a path, query or fragment")
	}

	u := &upstream.Proxy{Scheme: scheme}
	hostport := rest
	var user, pass string
	var hasUser, hasPass bool
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		userinfo := rest[:at]
		hostport = rest[at+1:]
		user, pass, hasPass = strings.Cut(userinfo, ":")
		hasUser = true
	}

	ap, err := parseHostPort(hostport, false)
	if err != nil {
		return nil, fmt.Errorf("proxy URI has an invalid host: %v", err)
	}
	if ap.Port() == 0 {
		return nil, errors.New("proxy URI has port 0")
	}
	u.Addr = ap

	switch scheme {
	case "socks5":
		if hasUser {
			if len(user) == 0 || len(user) > 255 {
				return nil, errors.New("proxy URI specified a invalid SOCKS5 username")
			}
			if !hasPass || len(pass) == 0 || len(pass) > 255 {
				return nil, errors.New("proxy URI specified a invalid SOCKS5 password")
			}
			u.User, u.Pass = user, pass
		}
	case "socks4a":
		if hasPass {
			return nil, errors.New("proxy URI specified SOCKS4a and a password")
		}
		u.User = user // the USERID; may be empty
	case "http":
		u.User, u.Pass = user, pass
	}
	return u, nil
}
