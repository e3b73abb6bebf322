package lifecycle

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/internal/harness"
	"github.com/ptreactor/ptreactor/internal/pttest"
	"github.com/ptreactor/ptreactor/reactor"
)

func inst(addr, cookie string) reactor.ORInstance {
	return reactor.ORInstance{Addr: netip.MustParseAddrPort(addr), CookieFile: cookie}
}

func TestParseORPoolList(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []reactor.ORInstance
		err  string
	}{
		{"127.0.0.1:5000=/c1", []reactor.ORInstance{inst("127.0.0.1:5000", "/c1")}, ""},
		{"127.0.0.1:5000=/c1,[::1]:5001=rel/c=2,10.0.0.1:5002=/c 3",
			[]reactor.ORInstance{inst("127.0.0.1:5000", "/c1"), inst("[::1]:5001", "rel/c=2"), inst("10.0.0.1:5002", "/c 3")}, ""},
		{"pool.txt", nil, `-orport-pool: entry 1, "pool.txt", is not host:port=cookie-file (a pool file is named by a path that begins with / or .)`},
		{"127.0.0.1:5000=/c1,", nil, `-orport-pool: entry 2, "", is not host:port=cookie-file (a pool file is named by a path that begins with / or .)`},
		{"127.0.0.1:5000=", nil, `-orport-pool: entry 1: 127.0.0.1:5000: no auth cookie file`},
		{"127.0.0.1:0=/c", nil, `-orport-pool: entry 1: "127.0.0.1:0": port 0`},
		{"localhost:5000=/c", nil, `-orport-pool: entry 1: "localhost:5000": "localhost" is not an IP address`},
		{"127.0.0.1=/c", nil, `-orport-pool: entry 1: "127.0.0.1": address 127.0.0.1: missing port in address`},
		{"127.0.0.1:5000=/a,127.0.0.1:5000=/b", nil, `-orport-pool: entry 2: 127.0.0.1:5000 is already entry 1`},
		{"[::ffff:127.0.0.1]:5000=/a,127.0.0.1:5000=/b", nil, `-orport-pool: entry 2: 127.0.0.1:5000 is already entry 1`},
		{"[fe80::1%lo]:5000=/a", nil, `-orport-pool: entry 1: "[fe80::1%lo]:5000": "fe80::1%lo" is not an IP address`},
	} {
		got, err := parseORPool(c.in)
		if es := fmt.Sprint(err); (err != nil || c.err != "") && es != c.err {
			t.Errorf("%q: err %v, want %s", c.in, err, c.err)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: %v, want %v", c.in, got, c.want)
		}
	}
	var long []string
	for i := 0; i <= reactor.MaxORPoolSize; i++ {
		long = append(long, fmt.Sprintf("127.0.0.1:%d=/c", 5000+i))
	}
	if _, err := parseORPool(strings.Join(long, ",")); err == nil || !strings.Contains(err.Error(), "more than 64") {
		t.Errorf("65 instances: %v", err)
	}
	if p, err := parseORPool(strings.Join(long[:64], ",")); err != nil || len(p) != 64 {
		t.Errorf("64 instances: %v", err)
	}
}

func TestParseORPoolFile(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []reactor.ORInstance
		err  string
	}{
		{"127.0.0.1:5000 /var/lib/tor1/extended_orport_auth_cookie\n",
			[]reactor.ORInstance{inst("127.0.0.1:5000", "/var/lib/tor1/extended_orport_auth_cookie")}, ""},
		{"# the pool\n\n  127.0.0.1:5000\t/c1  \r\n\t# two\n[::1]:5001   /a path/with spaces\n127.0.0.2:5000 /c,3",
			[]reactor.ORInstance{inst("127.0.0.1:5000", "/c1"), inst("[::1]:5001", "/a path/with spaces"), inst("127.0.0.2:5000", "/c,3")}, ""},
		{"", nil, `-orport-pool: P lists no instance`},
		{"# nothing\n\n", nil, `-orport-pool: P lists no instance`},
		{"127.0.0.1:5000 /c\n127.0.0.1:5001\n", nil, `-orport-pool: P line 2: "127.0.0.1:5001" is not "host:port cookie-file"`},
		{"127.0.0.1:5000=/c\n", nil, `-orport-pool: P line 1: "127.0.0.1:5000=/c" is not "host:port cookie-file"`},
		{"\n127.0.0.1:5000 /c\n\n127.0.0.1:5000 /d\n", nil, `-orport-pool: P line 4: 127.0.0.1:5000 is already on line 2`},
		{"host:5000 /c\n", nil, `-orport-pool: P line 1: "host:5000": "host" is not an IP address`},
		{"127.0.0.1:99999 /c\n", nil, `-orport-pool: P line 1: "127.0.0.1:99999": bad port "99999"`},
	} {
		got, err := parseORPoolFile("P", c.in)
		if es := fmt.Sprint(err); (err != nil || c.err != "") && es != c.err {
			t.Errorf("%q: err %v, want %s", c.in, err, c.err)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: %v, want %v", c.in, got, c.want)
		}
	}

	// By path: "/..." and "./..." are files; unreadable is an error that names it.
	dir := t.TempDir()
	f := filepath.Join(dir, "pool")
	if err := os.WriteFile(f, []byte("127.0.0.1:5000 /c\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if p, err := parseORPool(f); err != nil || len(p) != 1 {
		t.Errorf("%s: %v %v", f, p, err)
	}
	t.Chdir(dir)
	if p, err := parseORPool("./pool"); err != nil || len(p) != 1 {
		t.Errorf("./pool: %v %v", p, err)
	}
	if _, err := parseORPool("./none"); err == nil || err.Error() != "-orport-pool: cannot read the pool file: open ./none: no such file or directory" {
		t.Errorf("./none: %v", err)
	}
}

// checkPool is what an accepted pool always is.
func checkPool(t *testing.T, in string, p []reactor.ORInstance) {
	if len(p) == 0 || len(p) > reactor.MaxORPoolSize {
		t.Fatalf("%q: %d instances", in, len(p))
	}
	seen := map[netip.AddrPort]bool{}
	for _, i := range p {
		if !i.Addr.IsValid() || i.Addr.Port() == 0 || i.Addr.Addr().Is4In6() || i.Addr.Addr().Zone() != "" || i.CookieFile == "" || seen[i.Addr] {
			t.Fatalf("%q: bad instance %+v in %v", in, i, p)
		}
		seen[i.Addr] = true
	}
}

// FuzzORPoolFile: never a panic; an accepted pool is well-formed and, written back as a
// file, parses to the same pool.
func FuzzORPoolFile(f *testing.F) {
	f.Add("127.0.0.1:5000 /c1\n[::1]:5001\t/c 2\n# x\n")
	f.Add("\r\n127.0.0.1:5000  /c\r\n127.0.0.1:5000 /c\n")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseORPoolFile("fuzz", s)
		if err != nil {
			return
		}
		checkPool(t, s, p)
		var b strings.Builder
		for _, i := range p {
			fmt.Fprintf(&b, "%v %s\n", i.Addr, i.CookieFile)
		}
		again, err := parseORPoolFile("fuzz", b.String())
		if err != nil || !reflect.DeepEqual(again, p) {
			t.Fatalf("%q -> %v -> %q -> %v, %v", s, p, b.String(), again, err)
		}
	})
}

// FuzzORPoolList: the same for the list form.
func FuzzORPoolList(f *testing.F) {
	f.Add("127.0.0.1:5000=/c1,[::1]:5001=/c=2")
	f.Add("127.0.0.1:5000=/c,127.0.0.1:5000=/c")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseORPoolList(s)
		if err != nil {
			return
		}
		checkPool(t, s, p)
		var items []string
		for _, i := range p {
			items = append(items, i.Addr.String()+"="+i.CookieFile)
		}
		again, err := parseORPoolList(strings.Join(items, ","))
		if err != nil || !reflect.DeepEqual(again, p) {
			t.Fatalf("%q -> %v -> %v, %v", s, p, again, err)
		}
	})
}

// The real binary with a pool file of three ExtORPort stand-ins, one of which DENYs:
// clients from 20 source addresses of 127/8 each land on the same good instance every
// time, the good two both serve, tor's own ORPort (dead) is not used, and the DENY reaches
// tor as one warning.
func TestORPoolEndToEnd(t *testing.T) {
	ss := []*pttest.ExtORPort{
		pttest.StartExtORPort(t, harness.ExtOROptions{}),
		pttest.StartExtORPort(t, harness.ExtOROptions{Deny: true}),
		pttest.StartExtORPort(t, harness.ExtOROptions{}),
	}
	var pool strings.Builder
	pool.WriteString("# three tor instances\n")
	for _, s := range ss {
		fmt.Fprintf(&pool, "%s %s\n", s.Addr, s.CookieFile)
	}
	file := filepath.Join(t.TempDir(), "pool")
	if err := os.WriteFile(file, []byte(pool.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	p := pttest.Start(t, pttest.ServerEnv(t.TempDir(), "plain", "plain-127.0.0.1:0", "127.0.0.1:9"), "-orport-pool", file)
	server, lines := plainServerAddr(t, p)

	first := map[netip.Addr]int{}
	used := map[int]int{}
	for round := 0; round < 2; round++ {
		for k := 0; k < 20; k++ {
			src := netip.AddrFrom4([4]byte{127, 2, 0, byte(1 + k)})
			i := poolClient(t, server, src, exts(ss))
			if i == 1 {
				t.Errorf("%v served by the DENY stand-in", src)
			}
			if round == 0 {
				first[src] = i
				used[i]++
			} else if first[src] != i {
				t.Errorf("%v: instance %d, then %d", src, first[src], i)
			}
		}
	}
	if len(used) != 2 {
		t.Errorf("clients per instance: %v", used)
	}
	if len(ss[1].Sessions()) == 0 {
		t.Error("no client ranked the DENY stand-in first; the test shows nothing")
	}

	p.Signal(syscall.SIGTERM)
	lines = append(lines, allLines(t, p)...)
	warn := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "LOG SEVERITY=warning ") && strings.Contains(l, "ORPort pool instance down") {
			warn++
			if !strings.Contains(l, "instance=2 ") || !strings.Contains(l, "denied") {
				t.Errorf("warning line: %s", l)
			}
		}
	}
	if warn != 1 {
		t.Errorf("%d pool warnings, want 1: %q", warn, lines)
	}
}

func exts(ss []*pttest.ExtORPort) []*harness.ExtORPort {
	var out []*harness.ExtORPort
	for _, s := range ss {
		out = append(out, s.ExtORPort)
	}
	return out
}

// poolClient moves bytes through the plain server at server from source address src and
// returns the index of the stand-in that served the tunnel (the one whose session has the
// connection's address as USERADDR).
func poolClient(t *testing.T, server string, src netip.Addr, ss []*harness.ExtORPort) int {
	t.Helper()
	nd := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0)), Timeout: lineWait}
	c, err := nd.Dial("tcp", server)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(lineWait))
	msg := []byte(fmt.Sprintf("client %v", c.LocalAddr()))
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != string(msg) {
		t.Fatalf("%v: echo %q, %v", src, got, err)
	}
	ua := c.LocalAddr().(*net.TCPAddr).AddrPort().String()
	for i, s := range ss {
		for _, sess := range s.Sessions() {
			if sess.UserAddr == ua && sess.Okay && sess.AuthOK {
				return i
			}
		}
	}
	t.Fatalf("no stand-in served %v", ua)
	return -1
}

// The real binary with a pool list of three stand-ins: one killed, only its clients move
// and are served by the others; back on its port, its clients return after the backoff;
// every cookie rewritten, new tunnels authenticate with the new ones.
func TestORPoolEndToEndKilled(t *testing.T) {
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	ss := make([]*harness.ExtORPort, 3)
	var items []string
	for i, dir := range dirs {
		e, err := harness.StartExtORPort(dir, harness.ExtOROptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.Close)
		ss[i] = e
		items = append(items, e.Addr+"="+e.CookieFile)
	}
	// No TOR_PT_ORPORT (nor ExtORPort): the pool stands for them, as in a systemd launch.
	p := pttest.Start(t, pttest.ServerEnv(t.TempDir(), "plain", "plain-127.0.0.1:0", ""), "-orport-pool", strings.Join(items, ","))
	server, lines := plainServerAddr(t, p)
	var clients []netip.Addr
	for k := 0; k < 24; k++ {
		clients = append(clients, netip.AddrFrom4([4]byte{127, 4, 0, byte(1 + k)}))
	}
	round := func() map[netip.Addr]int {
		m := map[netip.Addr]int{}
		for _, src := range clients {
			m[src] = poolClient(t, server, src, ss)
		}
		return m
	}
	before := round()
	victim := before[clients[0]]
	ss[victim].Close()
	during := round()
	for _, src := range clients {
		if before[src] == victim && during[src] == victim || before[src] != victim && during[src] != before[src] {
			t.Errorf("%v: instance %d, with %d down %d", src, before[src], victim, during[src])
		}
	}
	e, err := harness.StartExtORPort(dirs[victim], harness.ExtOROptions{Addr: ss[victim].Addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	ss[victim] = e
	time.Sleep(1100 * time.Millisecond) // the first backoff is 1 s
	for _, s := range ss {
		if err := s.RewriteCookie(); err != nil {
			t.Fatal(err)
		}
	}
	after := round() // poolClient checks AuthOK
	for _, src := range clients {
		if after[src] != before[src] {
			t.Errorf("%v: instance %d, after the restart %d", src, before[src], after[src])
		}
	}

	p.Signal(syscall.SIGTERM)
	lines = append(lines, allLines(t, p)...)
	if !hasLine(lines, `^LOG SEVERITY=warning .*ORPort pool instance down`) || !hasLine(lines, `^LOG SEVERITY=notice .*ORPort pool instance back up`) {
		t.Errorf("no down warning and back-up notice: %q", lines)
	}
}

// plainServerAddr reads p's configuration lines and returns the address of its SMETHOD
// plain, and the lines.
func plainServerAddr(t *testing.T, p *pttest.Proc) (string, []string) {
	t.Helper()
	lines := config(t, p)
	for _, l := range lines {
		if strings.HasPrefix(l, "SMETHOD plain ") {
			return strings.Fields(l)[2], lines
		}
	}
	t.Fatalf("no SMETHOD: %q", lines)
	return "", nil
}
