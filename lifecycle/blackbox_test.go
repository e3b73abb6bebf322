package lifecycle

// Black-box tests: the real binary, started with the environment tor would give it, read
// line by line on stdout. One row per testable requirement of pt-spec, each checked against
// what tor and goptlib actually do.

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/internal/pttest"
)

const lineWait = 10 * time.Second

// specLine is the pt-spec 3.3 line grammar, restricted to the keywords ptreactor may send.
var specLine = regexp.MustCompile(`^(VERSION|VERSION-ERROR|ENV-ERROR|PROXY|PROXY-ERROR|CMETHOD|CMETHOD-ERROR|CMETHODS|SMETHOD|SMETHOD-ERROR|SMETHODS|LOG|STATUS)( [^\x00-\x1f\x7f]*)?$`)

// checkLine fails the test on anything that is not a spec line, and on a line that tor
// and Arti would not both read, or would read differently. Every stdout line of every
// black-box test passes through it.
func checkLine(t *testing.T, l string) {
	t.Helper()
	if !specLine.MatchString(l) {
		t.Errorf("not a spec line on stdout: %q", l)
	}
	checkBothParents(t, l)
}

// allLines reads stdout until the process closes it, checking each line.
func allLines(t *testing.T, p *pttest.Proc) []string {
	t.Helper()
	var out []string
	deadline := time.Now().Add(lineWait)
	for {
		l, ok := p.NextLine(time.Until(deadline))
		if !ok {
			if !p.Exited() && time.Now().After(deadline) {
				t.Fatalf("stdout still open after %v; got %q", lineWait, out)
			}
			return out
		}
		checkLine(t, l)
		out = append(out, l)
	}
}

// config reads lines up to and including "CMETHODS DONE" / "SMETHODS DONE".
func config(t *testing.T, p *pttest.Proc) []string {
	t.Helper()
	var out []string
	for {
		l := p.Line(lineWait)
		checkLine(t, l)
		out = append(out, l)
		if l == "CMETHODS DONE" || l == "SMETHODS DONE" {
			return out
		}
	}
}

// withoutLogs drops LOG lines.
func withoutLogs(lines []string) []string {
	var out []string
	for _, l := range lines {
		if !strings.HasPrefix(l, "LOG ") {
			out = append(out, l)
		}
	}
	return out
}

func hasLine(lines []string, re string) bool {
	r := regexp.MustCompile(re)
	for _, l := range lines {
		if r.MatchString(l) {
			return true
		}
	}
	return false
}

var statusVersion = regexp.MustCompile(`^STATUS TRANSPORT=[a-z0-9]+ TYPE=version IMPLEMENTATION="ptreactor" VERSION="[\x21-\x7e]+"$`)

// Setup failures: each is one exact line on stdout and exit status 1.
func TestSetupErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	pools := map[string]string{
		"pool-empty": "# no instance yet\n\n",
		"pool-bad":   "127.0.0.1:5000 /c1\n127.0.0.1:5001\n",
		"pool-dup":   "127.0.0.1:5000 /c1\n# again\n127.0.0.1:5000 /c2\n",
		"pool-name":  "localhost:5000 /c1\n",
	}
	for name, text := range pools {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pool := func(name string) []string { return []string{"-orport-pool", filepath.Join(dir, name)} }
	client := []string{"TOR_PT_MANAGED_TRANSPORT_VER=1", "TOR_PT_STATE_LOCATION=" + state, "TOR_PT_CLIENT_TRANSPORTS=plain"}
	server := []string{"TOR_PT_MANAGED_TRANSPORT_VER=1", "TOR_PT_STATE_LOCATION=" + state, "TOR_PT_SERVER_TRANSPORTS=plain",
		"TOR_PT_SERVER_BINDADDR=plain-127.0.0.1:0", "TOR_PT_ORPORT=127.0.0.1:9"}
	for _, c := range []struct {
		name string
		env  []string
		args []string
		want []string // exact stdout, LOG lines excluded
	}{
		{"no version var", []string{"TOR_PT_STATE_LOCATION=" + state, "TOR_PT_CLIENT_TRANSPORTS=plain"}, nil,
			[]string{"ENV-ERROR no TOR_PT_MANAGED_TRANSPORT_VER environment variable"}},
		{"no version 1", with(client, "TOR_PT_MANAGED_TRANSPORT_VER=2,1a"), nil, []string{"VERSION-ERROR no-version"}},
		{"no state dir", []string{"TOR_PT_MANAGED_TRANSPORT_VER=1", "TOR_PT_CLIENT_TRANSPORTS=plain"}, nil,
			[]string{"ENV-ERROR no TOR_PT_STATE_LOCATION environment variable"}},
		{"state dir is a file", with(client, "TOR_PT_STATE_LOCATION="+filepath.Join(file, "sub")), nil,
			[]string{`ENV-ERROR cannot create TOR_PT_STATE_LOCATION "` + filepath.Join(file, "sub") + `": mkdir ` + file + ": not a directory"}},
		{"both modes", with(client, "TOR_PT_SERVER_TRANSPORTS=plain"), nil, []string{"ENV-ERROR TOR_PT_[CLIENT,SERVER]_TRANSPORTS both set"}},
		{"neither mode", []string{"TOR_PT_MANAGED_TRANSPORT_VER=1", "TOR_PT_STATE_LOCATION=" + state}, nil,
			[]string{"ENV-ERROR no TOR_PT_CLIENT_TRANSPORTS or TOR_PT_SERVER_TRANSPORTS environment variable"}},
		{"bad outbound v4", with(client, "TOR_PT_OUTBOUND_BIND_ADDRESS_V4=1.2.3"), nil,
			[]string{`ENV-ERROR TOR_PT_OUTBOUND_BIND_ADDRESS_V4: "1.2.3" is not an IPv4 address`}},
		{"bindaddr without dash", with(server, "TOR_PT_SERVER_BINDADDR=plain"), nil,
			[]string{`ENV-ERROR TOR_PT_SERVER_BINDADDR: "plain": doesn't contain "-"`}},
		{"bindaddr duplicate", with(server, "TOR_PT_SERVER_BINDADDR=plain-127.0.0.1:0,plain-127.0.0.1:1"), nil,
			[]string{`ENV-ERROR TOR_PT_SERVER_BINDADDR: "plain-127.0.0.1:1": duplicate method name "plain"`}},
		{"bindaddr host name", with(server, "TOR_PT_SERVER_BINDADDR=plain-localhost:0"), nil,
			[]string{`ENV-ERROR TOR_PT_SERVER_BINDADDR: "plain-localhost:0": "localhost" is not an IP address`}},
		{"options trailing semicolon", with(server, "TOR_PT_SERVER_TRANSPORT_OPTIONS=plain:a=b;"), nil,
			[]string{`ENV-ERROR TOR_PT_SERVER_TRANSPORT_OPTIONS: "plain:a=b;": empty option`}},
		{"options no colon", with(server, "TOR_PT_SERVER_TRANSPORT_OPTIONS=a=b"), nil,
			[]string{`ENV-ERROR TOR_PT_SERVER_TRANSPORT_OPTIONS: "a=b": missing ':' in a=b`}},
		{"no orport", with(server, "TOR_PT_ORPORT="), nil,
			[]string{"ENV-ERROR need TOR_PT_ORPORT or TOR_PT_EXTENDED_SERVER_PORT environment variable"}},
		{"bad orport", with(server, "TOR_PT_ORPORT=127.0.0.1"), nil,
			[]string{`ENV-ERROR cannot resolve TOR_PT_ORPORT "127.0.0.1": address 127.0.0.1: missing port in address`}},
		{"extorport without cookie", with(server, "TOR_PT_EXTENDED_SERVER_PORT=127.0.0.1:4200"), nil,
			[]string{"ENV-ERROR need TOR_PT_AUTH_COOKIE_FILE environment variable with TOR_PT_EXTENDED_SERVER_PORT"}},
		{"pool file missing", server, pool("pool-none"),
			[]string{"ENV-ERROR -orport-pool: cannot read the pool file: open " + filepath.Join(dir, "pool-none") + ": no such file or directory"}},
		{"pool file empty", server, pool("pool-empty"),
			[]string{"ENV-ERROR -orport-pool: " + filepath.Join(dir, "pool-empty") + " lists no instance"}},
		{"pool file bad line", server, pool("pool-bad"),
			[]string{"ENV-ERROR -orport-pool: " + filepath.Join(dir, "pool-bad") + ` line 2: "127.0.0.1:5001" is not "host:port cookie-file"`}},
		{"pool file duplicate", server, pool("pool-dup"),
			[]string{"ENV-ERROR -orport-pool: " + filepath.Join(dir, "pool-dup") + " line 3: 127.0.0.1:5000 is already on line 1"}},
		{"pool file host name", server, pool("pool-name"),
			[]string{"ENV-ERROR -orport-pool: " + filepath.Join(dir, "pool-name") + ` line 1: "localhost:5000": "localhost" is not an IP address`}},
		{"pool list without cookie", server, []string{"-orport-pool", "127.0.0.1:5000"},
			[]string{`ENV-ERROR -orport-pool: entry 1, "127.0.0.1:5000", is not host:port=cookie-file (a pool file is named by a path that begins with / or .)`}},
		{"pool for a client", client, []string{"-orport-pool", "127.0.0.1:5000=/c"},
			[]string{"ENV-ERROR -orport-pool is for a bridge (server mode) only"}},
		{"PROXY protocol for a client", client, []string{"-proxy-protocol", "127.0.0.1/32"},
			[]string{"ENV-ERROR -proxy-protocol is for a bridge (server mode) only"}},
		{"proxy bad scheme", with(client, "TOR_PT_PROXY=ftp://127.0.0.1:21"), nil,
			[]string{"VERSION 1", "STATUS", "PROXY-ERROR proxy URI has invalid scheme: ftp"}},
		{"proxy host name", with(client, "TOR_PT_PROXY=socks5://localhost:1080"), nil,
			[]string{"VERSION 1", "STATUS", `PROXY-ERROR proxy URI has an invalid host: "localhost" is not an IP address`}},
		{"proxy socks4a password", with(client, "TOR_PT_PROXY=socks4a://u:p@127.0.0.1:1080"), nil,
			[]string{"VERSION 1", "STATUS", "PROXY-ERROR proxy URI specified SOCKS4a and a password"}},
		{"bad -cpu", client, []string{"-cpu", "mmx"}, nil},
		{"bad PTREACTOR_CPU", with(client, "PTREACTOR_CPU=mmx"), nil, nil},
		{"bad -log-level", client, []string{"-log-level", "loud"}, nil},
		{"bad -orport-source", client, []string{"-orport-source", "10.0.0.0"}, nil},
		{"bad -proxy-protocol", server, []string{"-proxy-protocol", "10.0.0.0/8,10.0.0.1"}, nil},
		{"stray argument", client, []string{"extra"}, nil},
		{"-metrics not loopback", client, []string{"-metrics", "192.0.2.1:9100"}, nil},
		{"-metrics relative path", client, []string{"-metrics", "metrics.sock"}, nil},
		{"-metrics-public alone", client, []string{"-metrics-public"}, nil},
		{"bad -status-interval", client, []string{"-status-interval", "10ms"}, nil},
		{"-metrics path is a file", client, []string{"-metrics", file},
			[]string{"ENV-ERROR -metrics: " + file + " exists and is not a socket"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := pttest.Start(t, c.env, c.args...)
			lines := allLines(t, p)
			if code := p.Wait(lineWait); code != ExitSetup {
				t.Errorf("exit %d, want %d", code, ExitSetup)
			}
			got := withoutLogs(lines)
			if len(got) == 3 && statusVersion.MatchString(got[1]) {
				got[1] = "STATUS"
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("stdout:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(c.want, "\n"))
			}
			if c.want == nil && !hasLine(lines, `^LOG SEVERITY=error `) {
				t.Errorf("a flag error should reach tor as a LOG error line; got %q", lines)
			}
		})
	}
}

// A client: VERSION, STATUS version, CMETHOD on 127.0.0.1 with a real port that accepts,
// CMETHODS DONE; unknown names skipped without CMETHOD-ERROR.
func TestClientMethods(t *testing.T) {
	state := filepath.Join(t.TempDir(), "pt_state") + "/"
	p := pttest.Start(t, pttest.ClientEnv(state, "obfs2,plain,obfs3", "TOR_PT_MANAGED_TRANSPORT_VER=1,1a,2b,this_is_a_valid_ver"))
	lines := config(t, p)
	got := withoutLogs(lines)
	if len(got) != 4 || got[0] != "VERSION 1" || !statusVersion.MatchString(got[1]) ||
		!regexp.MustCompile(`^CMETHOD plain socks5 127\.0\.0\.1:[1-9][0-9]*$`).MatchString(got[2]) || got[3] != "CMETHODS DONE" {
		t.Fatalf("stdout: %q", lines)
	}
	if lines[0] != "VERSION 1" {
		t.Errorf("first line %q, want VERSION 1", lines[0])
	}
	if !hasLine(lines, `^LOG SEVERITY=notice MESSAGE=".*cipher=`) {
		t.Errorf("no LOG notice naming the cipher: %q", lines)
	}
	if !hasLine(lines, `^LOG SEVERITY=warning MESSAGE="skipping unknown transport transport=obfs2"$`) {
		t.Errorf("no warning for the unknown transport: %q", lines)
	}
	addr := strings.Fields(got[2])[3]
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("CMETHOD listener does not accept: %v", err)
	}
	c.Close()

	fi, err := os.Stat(state)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir: %v %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(state, "ptreactor.log")); err != nil {
		t.Errorf("no log file in the state dir: %v", err)
	}
	p.Signal(syscall.SIGTERM)
	if code := p.Wait(lineWait); code != ExitClean {
		t.Errorf("exit %d after SIGTERM", code)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Errorf("listener still accepts after exit")
	}
}

// No known transport: CMETHODS DONE at once, then exit 3.
func TestNothingToLaunch(t *testing.T) {
	p := pttest.Start(t, pttest.ClientEnv(t.TempDir(), "obfs2,obfs3"))
	lines := allLines(t, p)
	got := withoutLogs(lines)
	if len(got) != 3 || got[2] != "CMETHODS DONE" || hasLine(lines, "CMETHOD-ERROR") {
		t.Errorf("stdout: %q", lines)
	}
	if code := p.Wait(lineWait); code != ExitNoTransport {
		t.Errorf("exit %d, want %d", code, ExitNoTransport)
	}
}

// TOR_PT_PROXY: PROXY DONE after VERSION and before any CMETHOD.
func TestProxyDone(t *testing.T) {
	for _, proxy := range []string{
		"socks5://127.0.0.1:8001",
		"socks5://tor:test1234@198.51.100.1:8000",
		"socks4a://198.51.100.2:8001",
		"http://user:pass@198.51.100.3:443",
		"http://[2001:db8::1]:3128",
	} {
		t.Run(proxy, func(t *testing.T) {
			p := pttest.Start(t, pttest.ClientEnv(t.TempDir(), "plain", "TOR_PT_PROXY="+proxy))
			got := withoutLogs(config(t, p))
			if len(got) != 5 || got[0] != "VERSION 1" || got[2] != "PROXY DONE" || !strings.HasPrefix(got[3], "CMETHOD plain socks5 ") {
				t.Errorf("stdout: %q", got)
			}
			p.Signal(syscall.SIGTERM)
			p.Wait(lineWait)
		})
	}
}

// A server: SMETHOD on the BINDADDR address with the real port; without a BINDADDR entry
// 0.0.0.0:0; a bind failure is SMETHOD-ERROR with a reason and
// the other transports still start.
func TestServerMethods(t *testing.T) {
	p := pttest.Start(t, pttest.ServerEnv(t.TempDir(), "plain", "plain-127.0.0.1:0", "127.0.0.1:9",
		"TOR_PT_SERVER_TRANSPORT_OPTIONS=plain:opt=a=b\\;c"))
	got := withoutLogs(config(t, p))
	if len(got) != 4 || !regexp.MustCompile(`^SMETHOD plain 127\.0\.0\.1:[1-9][0-9]*$`).MatchString(got[2]) || got[3] != "SMETHODS DONE" {
		t.Fatalf("stdout: %q", got)
	}
	c, err := net.Dial("tcp", strings.Fields(got[2])[2])
	if err != nil {
		t.Fatalf("SMETHOD listener does not accept: %v", err)
	}
	c.Close()
	p.Signal(syscall.SIGTERM)
	if code := p.Wait(lineWait); code != ExitClean {
		t.Errorf("exit %d", code)
	}

	// No BINDADDR at all: every address, kernel's port.
	env := pttest.ServerEnv(t.TempDir(), "plain", "", "127.0.0.1:9")
	p = pttest.Start(t, env)
	got = withoutLogs(config(t, p))
	if len(got) != 4 || !regexp.MustCompile(`^SMETHOD plain (0\.0\.0\.0|\[::\]):[1-9][0-9]*$`).MatchString(got[2]) {
		t.Fatalf("stdout: %q", got)
	}
	_, port, _ := net.SplitHostPort(strings.Fields(got[2])[2])
	if c, err = net.Dial("tcp", "127.0.0.1:"+port); err != nil {
		t.Fatalf("wildcard listener does not accept: %v", err)
	}
	c.Close()
	p.Signal(syscall.SIGTERM)
	p.Wait(lineWait)

	// The address is taken: SMETHOD-ERROR, SMETHODS DONE, nothing launched.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	p = pttest.Start(t, pttest.ServerEnv(t.TempDir(), "plain,obfs2", "plain-"+busy.Addr().String(), "127.0.0.1:9"))
	lines := allLines(t, p)
	got = withoutLogs(lines)
	if len(got) != 4 || !strings.HasPrefix(got[2], "SMETHOD-ERROR plain ") || len(got[2]) <= len("SMETHOD-ERROR plain ") ||
		got[3] != "SMETHODS DONE" || hasLine(lines, "METHOD-ERROR obfs2") {
		t.Errorf("stdout: %q", lines)
	}
	if code := p.Wait(lineWait); code != ExitNoTransport {
		t.Errorf("exit %d, want %d", code, ExitNoTransport)
	}
}

// startClient starts a client and returns it with its CMETHOD address.
func startClient(t *testing.T, extra ...string) (*pttest.Proc, string) {
	t.Helper()
	env := append([]string{
		"TOR_PT_MANAGED_TRANSPORT_VER=1",
		"TOR_PT_STATE_LOCATION=" + t.TempDir(),
		"TOR_PT_CLIENT_TRANSPORTS=plain",
	}, extra...)
	p := pttest.Start(t, env)
	for _, l := range config(t, p) {
		if strings.HasPrefix(l, "CMETHOD plain socks5 ") {
			return p, strings.Fields(l)[3]
		}
	}
	t.Fatal("no CMETHOD line")
	return nil, ""
}

func startServer(t *testing.T, extra ...string) (*pttest.Proc, string) {
	t.Helper()
	p := pttest.Start(t, pttest.ServerEnv(t.TempDir(), "plain", "plain-127.0.0.1:0", "127.0.0.1:9", extra...))
	for _, l := range config(t, p) {
		if strings.HasPrefix(l, "SMETHOD plain ") {
			return p, strings.Fields(l)[2]
		}
	}
	t.Fatal("no SMETHOD line")
	return nil, ""
}

// refusesSoon polls until addr refuses connections, or fails the test after lineWait.
func refusesSoon(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(lineWait)
	for time.Now().Before(deadline) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s still accepts connections", addr)
}

// TOR_PT_EXIT_ON_STDIN_CLOSE=1: stdin EOF ends the process cleanly.
func TestStdinCloseExits(t *testing.T) {
	p, addr := startClient(t, "TOR_PT_EXIT_ON_STDIN_CLOSE=1")
	p.Stdin.Close()
	if code := p.Wait(lineWait); code != ExitClean {
		t.Errorf("exit %d", code)
	}
	refusesSoon(t, addr)
}

// Without TOR_PT_EXIT_ON_STDIN_CLOSE=1, a closed stdin changes nothing.
func TestStdinCloseIgnored(t *testing.T) {
	for _, v := range []string{"", "0"} {
		p, addr := startClient(t, "TOR_PT_EXIT_ON_STDIN_CLOSE="+v)
		p.Stdin.Close()
		time.Sleep(300 * time.Millisecond) // give a wrong stdin watcher the chance to act
		c, err := net.Dial("tcp", addr)
		if err != nil || p.Exited() {
			t.Fatalf("TOR_PT_EXIT_ON_STDIN_CLOSE=%q: stopped serving after stdin closed (%v)", v, err)
		}
		c.Close()
		p.Signal(syscall.SIGTERM)
		if code := p.Wait(lineWait); code != ExitClean {
			t.Errorf("exit %d", code)
		}
	}
}

// SIGTERM ends client and server at once, even with tor's end of stdout already closed.
func TestSIGTERM(t *testing.T) {
	for _, start := range []func(*testing.T, ...string) (*pttest.Proc, string){startClient, startServer} {
		p, addr := start(t, "TOR_PT_EXIT_ON_STDIN_CLOSE=1")
		held, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		p.Signal(syscall.SIGTERM)
		if code := p.Wait(lineWait); code != ExitClean {
			t.Errorf("exit %d", code)
		}
		held.Close()
		refusesSoon(t, addr)
	}
}

// SIGINT, both modes: the first closes the listeners and waits for open connections; a
// second SIGINT ends it; with nothing open, the first one ends it once drained.
func TestSIGINT(t *testing.T) {
	for _, start := range []func(*testing.T, ...string) (*pttest.Proc, string){startClient, startServer} {
		// Drain, then a second SIGINT.
		p, addr := start(t, "TOR_PT_EXIT_ON_STDIN_CLOSE=1")
		held, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		p.Signal(syscall.SIGINT)
		refusesSoon(t, addr)
		if !p.Exited() {
			p.Signal(syscall.SIGINT)
		}
		if code := p.Wait(lineWait); code != ExitClean {
			t.Errorf("exit %d after two SIGINTs", code)
		}
		held.Close()

		// Drain, then the last connection ends.
		p, addr = start(t, "TOR_PT_EXIT_ON_STDIN_CLOSE=1")
		if held, err = net.Dial("tcp", addr); err != nil {
			t.Fatal(err)
		}
		p.Signal(syscall.SIGINT)
		refusesSoon(t, addr)
		held.Close()
		if code := p.Wait(lineWait); code != ExitClean {
			t.Errorf("exit %d after SIGINT and drain", code)
		}

		// Drain, then SIGTERM.
		p, addr = start(t, "TOR_PT_EXIT_ON_STDIN_CLOSE=1")
		if held, err = net.Dial("tcp", addr); err != nil {
			t.Fatal(err)
		}
		p.Signal(syscall.SIGINT)
		refusesSoon(t, addr)
		if !p.Exited() {
			p.Signal(syscall.SIGTERM)
		}
		if code := p.Wait(lineWait); code != ExitClean {
			t.Errorf("exit %d after SIGINT, SIGTERM", code)
		}
		held.Close()
	}
}

// Bad gnet logging variables must not crash the binary (gnet panics in its init).
func TestGnetLoggingEnvIgnored(t *testing.T) {
	p, _ := startClient(t, "GNET_LOGGING_LEVEL=loud", "GNET_LOGGING_FILE=/nonexistent/dir/gnet.log")
	p.Signal(syscall.SIGTERM)
	if code := p.Wait(lineWait); code != ExitClean {
		t.Errorf("exit %d", code)
	}
}

// LOG messages are CStrings, and IP addresses are scrubbed from LOG lines and the log file
// unless -unsafe-logging (pt-spec 4).
func TestLogQuotingAndScrubbing(t *testing.T) {
	dir := t.TempDir()
	logFile := filepath.Join(dir, "custom.log")
	weird := "yes \"192.0.2.7:99\" \\ \x01 é"
	p := pttest.Start(t, pttest.ClientEnv(filepath.Join(dir, "state"), "plain", "TOR_PT_EXIT_ON_STDIN_CLOSE="+weird),
		"-log-level", "info", "-log-file", logFile)
	lines := config(t, p)
	var msg string
	for _, l := range lines {
		if strings.HasPrefix(l, "LOG SEVERITY=warning ") && strings.Contains(l, "TOR_PT_EXIT_ON_STDIN_CLOSE") {
			m, err := artiParse(l)
			if err != nil {
				t.Fatal(err)
			}
			msg = m.fields["MESSAGE"]
		}
	}
	if !strings.Contains(msg, `\" \\ \x01 \u00e9"`) || strings.Contains(msg, "192.0.2.7") || !strings.Contains(msg, scrubbed) {
		t.Errorf("warning message %q (from %q)", msg, lines)
	}
	p.Signal(syscall.SIGTERM)
	p.Wait(lineWait)
	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "127.0.0.1") || !strings.Contains(string(b), "client transport ready transport=plain addr=[scrubbed]") {
		t.Errorf("log file not scrubbed:\n%s", b)
	}

	logFile = filepath.Join(dir, "unsafe.log")
	p = pttest.Start(t, pttest.ClientEnv(filepath.Join(dir, "state"), "plain"), "-log-level", "info", "-log-file", logFile, "-unsafe-logging")
	config(t, p)
	p.Signal(syscall.SIGTERM)
	p.Wait(lineWait)
	if b, err = os.ReadFile(logFile); err != nil || !strings.Contains(string(b), "addr=127.0.0.1:") {
		t.Errorf("-unsafe-logging log file:\n%s", b)
	}
}

// -version prints one line with the version and the cipher variant and exits 0.
func TestVersionFlag(t *testing.T) {
	p := pttest.Start(t, nil, "-version", "-cpu", "generic")
	l := p.Line(lineWait)
	if !regexp.MustCompile(`^ptreactor \S+ cipher=generic$`).MatchString(l) {
		t.Errorf("-version printed %q", l)
	}
	if code := p.Wait(lineWait); code != ExitClean {
		t.Errorf("exit %d", code)
	}
}

// tor closes its end of our stdout right after SIGTERM: later writes
// fail with EPIPE, which must neither kill the process with SIGPIPE nor block its exit.
func TestClosedStdout(t *testing.T) {
	cmd := exec.Command(pttest.Binary(t), "-log-level", "debug")
	cmd.Env = pttest.ClientEnv(t.TempDir(), "plain")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	r := bufio.NewReader(stdout)
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if l == "CMETHODS DONE\n" {
			break
		}
	}
	stdout.Close()
	// The first SIGINT sends a LOG notice into the closed pipe.
	_ = cmd.Process.Signal(syscall.SIGINT)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit: %v (want status 0, not a SIGPIPE death)", err)
		}
	case <-time.After(lineWait):
		t.Fatal("no exit after SIGTERM with stdout closed")
	}
}

// Without TOR_PT_EXIT_ON_STDIN_CLOSE, the death of the parent still ends ptreactor
// (pt-spec 3.4: PTs SHOULD notice that the parent has terminated).
func TestParentDeath(t *testing.T) {
	env := pttest.ClientEnv(t.TempDir(), "plain", "TOR_PT_EXIT_ON_STDIN_CLOSE=0")
	// sh starts ptreactor, prints its pid, and exits a little later, orphaning it.
	cmd := exec.Command("sh", "-c", `"$0" >/dev/null </dev/null & echo $!; sleep 1`, pttest.Binary(t))
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(string(out))
	deadline := time.Now().Add(lineWait)
	for !procGone(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(atoi(pid), syscall.SIGKILL)
			t.Fatalf("ptreactor %s still runs %v after its parent exited", pid, lineWait)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// procGone reports whether process pid has ended: it no longer exists, or it is a zombie
// that its (new) parent has not reaped yet.
func procGone(pid string) bool {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return true
	}
	// "pid (comm) S ...": the state follows the last ')'.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] == "Z"
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}
