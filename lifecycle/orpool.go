package lifecycle

// -orport-pool: the Extended ORPorts of several tor instances a bridge feeds, with their
// auth cookie files. Parsed and checked here, once, into reactor.Config.ORPool.

import (
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/ptreactor/ptreactor/reactor"
)

// parseORPool reads -orport-pool's value: a path to a pool file when it begins with '/' or
// '.' (so "./pool" for a relative one), else a comma-separated list of
// host:port=cookie-file. A list entry begins with an IP address, never with '/' or '.', so
// the two cannot be taken for each other.
func parseORPool(v string) ([]reactor.ORInstance, error) {
	if strings.HasPrefix(v, "/") || strings.HasPrefix(v, ".") {
		b, err := os.ReadFile(v)
		if err != nil {
			return nil, fmt.Errorf("-orport-pool: cannot read the pool file: %v", err)
		}
		return parseORPoolFile(v, string(b))
	}
	return parseORPoolList(v)
}

// parseORPoolFile parses a pool file, named name in errors: one "host:port cookie-file"
// per line, the two separated by spaces or tabs; blank lines and lines whose first
// non-blank character is '#' are skipped. The cookie file is the rest of the line, so it
// may hold spaces, but not at its ends.
func parseORPoolFile(name, text string) ([]reactor.ORInstance, error) {
	var (
		pool  []reactor.ORInstance
		lines []int // the line of each entry, for duplicates
	)
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.IndexAny(line, " \t")
		if sp < 0 {
			return nil, fmt.Errorf("-orport-pool: %s line %d: %+q is not \"host:port cookie-file\"", name, n, line)
		}
		in, err := parseORInstance(line[:sp], strings.TrimSpace(line[sp:]))
		if err != nil {
			return nil, fmt.Errorf("-orport-pool: %s line %d: %v", name, n, err)
		}
		for j, p := range pool {
			if p.Addr == in.Addr {
				return nil, fmt.Errorf("-orport-pool: %s line %d: %v is already on line %d", name, n, in.Addr, lines[j])
			}
		}
		if len(pool) == reactor.MaxORPoolSize {
			return nil, fmt.Errorf("-orport-pool: %s line %d: more than %d instances", name, n, reactor.MaxORPoolSize)
		}
		pool, lines = append(pool, in), append(lines, n)
	}
	if len(pool) == 0 {
		return nil, fmt.Errorf("-orport-pool: %s lists no instance", name)
	}
	return pool, nil
}

// parseORPoolList parses the list form, host:port=cookie-file[,...]; a cookie file whose
// path holds a comma needs the file form.
func parseORPoolList(v string) ([]reactor.ORInstance, error) {
	var pool []reactor.ORInstance
	for i, item := range strings.Split(v, ",") {
		n := i + 1
		addr, cookie, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("-orport-pool: entry %d, %+q, is not host:port=cookie-file (a pool file is named by a path that begins with / or .)", n, item)
		}
		in, err := parseORInstance(addr, cookie)
		if err != nil {
			return nil, fmt.Errorf("-orport-pool: entry %d: %v", n, err)
		}
		for j, p := range pool {
			if p.Addr == in.Addr {
				return nil, fmt.Errorf("-orport-pool: entry %d: %v is already entry %d", n, in.Addr, j+1)
			}
		}
		if len(pool) == reactor.MaxORPoolSize {
			return nil, fmt.Errorf("-orport-pool: more than %d instances", reactor.MaxORPoolSize)
		}
		pool = append(pool, in)
	}
	return pool, nil
}

// parseORInstance checks one entry: an IP address and a non-zero port, and a cookie file.
func parseORInstance(addr, cookie string) (reactor.ORInstance, error) {
	ap, err := parseHostPort(addr, false)
	if err != nil {
		return reactor.ORInstance{}, fmt.Errorf("%+q: %v", addr, err)
	}
	if ap.Port() == 0 {
		return reactor.ORInstance{}, fmt.Errorf("%+q: port 0", addr)
	}
	if cookie == "" {
		return reactor.ORInstance{}, fmt.Errorf("%v: no auth cookie file", ap)
	}
	return reactor.ORInstance{Addr: netip.AddrPortFrom(ap.Addr(), ap.Port()), CookieFile: cookie}, nil
}
