package harness

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// PairSpec describes a client PT and a server PT joined by one transport, with the server
// feeding an ORPort (or ExtORPort). Either binary may be any managed PT: ptreactor,
// obfs4proxy, bench's reference forwarder.
type PairSpec struct {
	ClientBin, ServerBin       string
	ClientFlags                []string
	ServerFlags                []string
	ClientEnv, ServerEnv       []string // extra environment entries
	Transport                  string   // "obfs4" or "plain"
	Dir                        string   // parent of the two state directories
	ServerStateDir             string   // overrides Dir/server (to reuse a bridge identity)
	ServerOptions              string   // TOR_PT_SERVER_TRANSPORT_OPTIONS
	ORPort                     string
	ExtORPort, CookieFile      string
	IATMode                    int // the iat-mode tor passes the client (obfs4)
	ClientStderr, ServerStderr io.Writer
}

// Pair is a running client PT + server PT.
type Pair struct {
	Client, Server *PT
	Transport      string
	Bridge         string // the server's transport address
	SOCKSArgs      string // what tor would put in the SOCKS username/password
}

// StartPair launches the server, then the client, and works out the SOCKS arguments a tor
// client would use for the server's bridge line.
func StartPair(ctx context.Context, ps PairSpec) (*Pair, error) {
	return StartPairWithLines(ctx, ps, nil, nil)
}

// StartPairWithLines is StartPair with a callback for every stdout line of the server and
// of the client (nil: none).
func StartPairWithLines(ctx context.Context, ps PairSpec, serverLines, clientLines func(string)) (*Pair, error) {
	sdir := ps.ServerStateDir
	if sdir == "" {
		sdir = filepath.Join(ps.Dir, "server")
	}
	cdir := filepath.Join(ps.Dir, "client")
	for _, d := range []string{sdir, cdir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	srv, err := Launch(ctx, Spec{
		Bin: ps.ServerBin, Args: ps.ServerFlags, Env: ps.ServerEnv, StateDir: sdir,
		ServerTransports: ps.Transport, BindAddr: ps.Transport + "-127.0.0.1:0",
		ORPort: ps.ORPort, ExtORPort: ps.ExtORPort, AuthCookieFile: ps.CookieFile,
		ServerOptions: ps.ServerOptions, Stderr: ps.ServerStderr, Lines: serverLines,
	})
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	cli, err := Launch(ctx, Spec{
		Bin: ps.ClientBin, Args: ps.ClientFlags, Env: ps.ClientEnv, StateDir: cdir,
		ClientTransports: ps.Transport, Stderr: ps.ClientStderr, Lines: clientLines,
	})
	if err != nil {
		srv.Kill()
		return nil, fmt.Errorf("client: %w", err)
	}
	p := &Pair{Client: cli, Server: srv, Transport: ps.Transport, Bridge: srv.Addr(ps.Transport)}
	if ps.Transport == "obfs4" {
		cert := srv.Methods["obfs4"].Arg("cert")
		if cert == "" {
			p.Stop(time.Second)
			return nil, fmt.Errorf("server %s: SMETHOD obfs4 has no cert in its ARGS: %q", ps.ServerBin, srv.Header)
		}
		p.SOCKSArgs = ObfsArgs(cert, ps.IATMode)
	}
	return p, nil
}

// Dial opens one tunnel through the pair.
func (p *Pair) Dial(ctx context.Context) (net.Conn, error) {
	return DialSOCKS(ctx, p.Client.Addr(p.Transport), p.Bridge, p.SOCKSArgs)
}

// Stop stops both processes (closing their stdin) and reports whether both left on their own.
func (p *Pair) Stop(timeout time.Duration) bool {
	a := p.Client.Stop(timeout)
	b := p.Server.Stop(timeout)
	return a && b
}

// IATArg returns the iat-mode a server PT publishes in its SMETHOD ARGS, or -1.
func IATArg(pt *PT) int {
	n, err := strconv.Atoi(pt.Methods["obfs4"].Arg("iat-mode"))
	if err != nil {
		return -1
	}
	return n
}
