package reactor

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/internal/harness"
)

// poolStandIn is an ExtORPort stand-in of a pool test that can be stopped and brought back
// on the same port with the same cookie file.
type poolStandIn struct {
	*harness.ExtORPort
	dir  string
	opts harness.ExtOROptions
}

func startPoolStandIn(t *testing.T, opts harness.ExtOROptions) *poolStandIn {
	t.Helper()
	s := &poolStandIn{dir: t.TempDir(), opts: opts}
	s.start(t)
	return s
}

func (s *poolStandIn) start(t *testing.T) {
	t.Helper()
	e, err := harness.StartExtORPort(s.dir, s.opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	s.ExtORPort, s.opts.Addr = e, e.Addr
}

func poolOf(t *testing.T, ss ...*poolStandIn) []ORInstance {
	var p []ORInstance
	for _, s := range ss {
		p = append(p, ORInstance{Addr: addrPort(t, s.Addr), CookieFile: s.CookieFile})
	}
	return p
}

// poolClients are n client addresses in 127/8, one per source IP.
func poolClients(n int) []netip.Addr {
	var a []netip.Addr
	for i := 0; i < n; i++ {
		a = append(a, netip.AddrFrom4([4]byte{127, 1, byte(i / 250), byte(1 + i%250)}))
	}
	return a
}

// poolDialer is a dialer over the pool whose log (info and up) goes to logs.
func poolDialer(t *testing.T, pool []ORInstance) (*dialer, *logSink) {
	logs := &logSink{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return mustDialer(t, Config{Logger: log, ORPool: pool}), logs
}

// dialEach dials tor once for every client and returns, per client, the index of the
// stand-in that authenticated it and said OKAY (found by its USERADDR, whose port is
// unique to the dial).
func dialEach(t *testing.T, d *dialer, ss []*poolStandIn, clients []netip.Addr, port *uint16) map[netip.Addr]int {
	t.Helper()
	got := make(map[netip.Addr]int, len(clients))
	for _, ip := range clients {
		*port++
		ua := netip.AddrPortFrom(ip, *port)
		c, err := d.dialTor(testCtx(t), net.TCPAddrFromAddrPort(ua), "obfs4")
		if err != nil {
			t.Fatalf("client %v: %v", ip, err)
		}
		expectEcho(t, c, nil)
		c.Close()
		got[ip] = -1
		for i, s := range ss {
			for _, sess := range s.Sessions() {
				if sess.UserAddr == ua.String() && sess.Okay && sess.AuthOK {
					got[ip] = i
				}
			}
		}
		if got[ip] < 0 {
			t.Fatalf("client %v: no stand-in served USERADDR %v", ip, ua)
		}
	}
	return got
}

func countLines(logs *logSink, substr string) int {
	n := 0
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

// The ranking: deterministic, spread over every instance, and removing or adding one
// instance moves only the clients that rank it first.
func TestPoolRanking(t *testing.T) {
	insts := make([]ORInstance, 4)
	for i := range insts {
		insts[i] = ORInstance{Addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(5000+i)), CookieFile: "c"}
	}
	clients := poolClients(1000)
	assign := func(p *orPool) []ORInstance {
		out := make([]ORInstance, len(clients))
		for j, ip := range clients {
			k := ip.As16()
			out[j] = p.inst[p.pick(&k, 0, 0)].ORInstance
		}
		return out
	}
	four := assign(newORPool(slog.New(slog.DiscardHandler), insts))
	if again := assign(newORPool(slog.New(slog.DiscardHandler), insts)); fmt.Sprint(again) != fmt.Sprint(four) {
		t.Fatal("a new pool of the same instances assigns differently")
	}
	per := map[ORInstance]int{}
	for _, in := range four {
		per[in]++
	}
	for _, in := range insts {
		// 250 expected; a hash that ignored the client or the instance would give 0 or 1000.
		if per[in] < 150 || per[in] > 350 {
			t.Errorf("instance %v has %d of %d clients", in.Addr, per[in], len(clients))
		}
	}
	three := assign(newORPool(slog.New(slog.DiscardHandler), insts[:3]))
	moved := 0
	for j := range clients {
		switch {
		case four[j] == insts[3]:
			moved++
		case three[j] != four[j]:
			t.Fatalf("client %v moved from %v to %v though its instance stayed", clients[j], four[j].Addr, three[j].Addr)
		}
	}
	if moved != per[insts[3]] {
		t.Fatalf("moved %d", moved)
	}
	// A tried (or down) first choice gives the second of the same ranking.
	p := newORPool(slog.New(slog.DiscardHandler), insts)
	for j, ip := range clients[:100] {
		k := ip.As16()
		first := p.pick(&k, 0, 0)
		if p.inst[first].ORInstance != four[j] {
			t.Fatal("pick differs")
		}
		second := p.pick(&k, 1<<first, 0)
		q := newORPool(slog.New(slog.DiscardHandler), append(append([]ORInstance(nil), insts[:first]...), insts[first+1:]...))
		if want := q.inst[q.pick(&k, 0, 0)].ORInstance; p.inst[second].ORInstance != want {
			t.Fatalf("client %v: second choice %v, want %v", ip, p.inst[second].Addr, want.Addr)
		}
		if p.pick(&k, 1<<len(insts)-1, 0) != -1 {
			t.Fatal("all tried, still a pick")
		}
	}
}

func TestPoolPickAllocs(t *testing.T) {
	insts := make([]ORInstance, 12)
	for i := range insts {
		insts[i] = ORInstance{Addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(5000+i)), CookieFile: "c"}
	}
	p := newORPool(slog.New(slog.DiscardHandler), insts)
	p.failed(3, fmt.Errorf("x"), time.Now(), time.Now())
	k := netip.MustParseAddr("198.51.100.7").As16()
	if n := testing.AllocsPerRun(1000, func() { p.pick(&k, 1<<5, time.Now().UnixNano()) }); n != 0 {
		t.Fatalf("%v allocations per pick", n)
	}
}

// Three stand-ins with different cookies: every client lands on the same instance every
// time, and the clients are spread over all three.
func TestPoolStickiness(t *testing.T) {
	ss := []*poolStandIn{startPoolStandIn(t, harness.ExtOROptions{}), startPoolStandIn(t, harness.ExtOROptions{}), startPoolStandIn(t, harness.ExtOROptions{})}
	d, logs := poolDialer(t, poolOf(t, ss...))
	clients := poolClients(30)
	var port uint16 = 1000
	first := dialEach(t, d, ss, clients, &port)
	used := map[int]int{}
	for _, i := range first {
		used[i]++
	}
	if len(used) != 3 {
		t.Errorf("clients per instance %v: not all three used", used)
	}
	for round := 0; round < 2; round++ {
		again := dialEach(t, d, ss, clients, &port)
		for _, ip := range clients {
			if again[ip] != first[ip] {
				t.Errorf("round %d: client %v went to instance %d, before %d", round, ip, again[ip], first[ip])
			}
		}
	}
	if strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("warnings: %s", logs)
	}
}

// A stand-in killed: only its clients move, they succeed on the other instances, and the
// warning comes once; back on the same port, its clients return after the backoff.
func TestPoolORPortKilled(t *testing.T) {
	ss := []*poolStandIn{startPoolStandIn(t, harness.ExtOROptions{}), startPoolStandIn(t, harness.ExtOROptions{}), startPoolStandIn(t, harness.ExtOROptions{})}
	d, logs := poolDialer(t, poolOf(t, ss...))
	clients := poolClients(30)
	var port uint16 = 1000
	before := dialEach(t, d, ss, clients, &port)

	ss[1].Close()
	down := dialEach(t, d, ss, clients, &port)
	movedN := 0
	for _, ip := range clients {
		switch {
		case before[ip] == 1:
			movedN++
			if down[ip] == 1 {
				t.Errorf("client %v served by the closed stand-in", ip)
			}
		case down[ip] != before[ip]:
			t.Errorf("client %v of instance %d moved to %d", ip, before[ip], down[ip])
		}
	}
	if movedN == 0 {
		t.Fatal("no client was on the closed stand-in")
	}
	if n := countLines(logs, "level=WARN msg=\"ORPort pool instance down"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), "instance=2 ") {
		t.Errorf("the warning does not name instance 2:\n%s", logs)
	}

	ss[1].start(t)
	time.Sleep(poolBackoffMin + 100*time.Millisecond)
	back := dialEach(t, d, ss, clients, &port)
	for _, ip := range clients {
		if back[ip] != before[ip] {
			t.Errorf("client %v on instance %d after the restart, before %d", ip, back[ip], before[ip])
		}
	}
	if n := countLines(logs, "msg=\"ORPort pool instance back up\""); n != 1 {
		t.Errorf("%d back-up notices, want 1:\n%s", n, logs)
	}
	if n := countLines(logs, "level=WARN"); n != 1 {
		t.Errorf("%d warnings in all, want 1:\n%s", n, logs)
	}
}

// A stand-in that DENYs and one whose cookie is not ours (a wrong server hash): both are
// skipped, each logged once, and every client is served by the two good ones.
func TestPoolORPortDenyAndBadHash(t *testing.T) {
	ss := []*poolStandIn{
		startPoolStandIn(t, harness.ExtOROptions{}),
		startPoolStandIn(t, harness.ExtOROptions{Deny: true}),
		startPoolStandIn(t, harness.ExtOROptions{}),
		startPoolStandIn(t, harness.ExtOROptions{BadServerHash: true}),
	}
	d, logs := poolDialer(t, poolOf(t, ss...))
	clients := poolClients(40)
	var port uint16 = 1000
	for round := 0; round < 2; round++ {
		got := dialEach(t, d, ss, clients, &port)
		for ip, i := range got {
			if i != 0 && i != 2 {
				t.Errorf("client %v served by stand-in %d", ip, i)
			}
		}
		if round == 0 {
			// Down, they are skipped: one connection each, of the first client that ranked them first.
			if len(ss[1].Sessions()) != 1 || len(ss[3].Sessions()) != 1 {
				t.Errorf("the bad instances were tried while down: %d, %d sessions", len(ss[1].Sessions()), len(ss[3].Sessions()))
			}
			time.Sleep(poolBackoffMin + 100*time.Millisecond) // the retries fail again, quietly
		}
	}
	if len(ss[1].Sessions()) < 2 || len(ss[3].Sessions()) < 2 {
		t.Errorf("the bad instances were not retried after the backoff: %d, %d sessions", len(ss[1].Sessions()), len(ss[3].Sessions()))
	}
	warn := countLines(logs, "level=WARN")
	deny := countLines(logs, "level=WARN msg=\"ORPort pool instance down; its clients go to the next instance until it is back\" instance=2 ")
	hash := countLines(logs, "level=WARN msg=\"ORPort pool instance down; its clients go to the next instance until it is back\" instance=4 ")
	if warn != 2 || deny != 1 || hash != 1 || !strings.Contains(logs.String(), "denied") || !strings.Contains(logs.String(), "server hash") {
		t.Errorf("warnings %d (deny %d, hash %d), want one each:\n%s", warn, deny, hash, logs)
	}
}

// Cookies rewritten (tor restarted): new tunnels authenticate with the new ones, no instance
// is marked down.
func TestPoolORPortCookieRewritten(t *testing.T) {
	ss := []*poolStandIn{startPoolStandIn(t, harness.ExtOROptions{}), startPoolStandIn(t, harness.ExtOROptions{}), startPoolStandIn(t, harness.ExtOROptions{})}
	d, logs := poolDialer(t, poolOf(t, ss...))
	clients := poolClients(15)
	var port uint16 = 1000
	before := dialEach(t, d, ss, clients, &port)
	for _, s := range ss {
		if err := s.RewriteCookie(); err != nil {
			t.Fatal(err)
		}
	}
	after := dialEach(t, d, ss, clients, &port) // dialEach checks AuthOK
	for _, ip := range clients {
		if after[ip] != before[ip] {
			t.Errorf("client %v moved", ip)
		}
	}
	if strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("warnings: %s", logs)
	}
}

// A pool and an ORSource: the source range is used toward every instance.
func TestPoolORPortSource(t *testing.T) {
	ss := []*poolStandIn{startPoolStandIn(t, harness.ExtOROptions{}), startPoolStandIn(t, harness.ExtOROptions{})}
	d := mustDialer(t, Config{ORPool: poolOf(t, ss...), ORSource: netip.MustParsePrefix("127.3.0.0/16")})
	var port uint16 = 1000
	dialEach(t, d, ss, poolClients(20), &port)
	for i, s := range ss {
		srcs := map[netip.Addr]bool{}
		for _, sess := range s.Sessions() {
			if !netip.MustParsePrefix("127.3.0.0/16").Contains(sess.Remote.Addr()) {
				t.Errorf("stand-in %d: connection from %v", i, sess.Remote)
			}
			srcs[sess.Remote.Addr()] = true
		}
		if len(s.Sessions()) > 1 && len(srcs) < 2 {
			t.Errorf("stand-in %d: %d connections from one source", i, len(s.Sessions()))
		}
	}
}

func TestNewDialerPool(t *testing.T) {
	v4 := ORInstance{Addr: netip.MustParseAddrPort("127.0.0.1:5000"), CookieFile: "c"}
	v6 := ORInstance{Addr: netip.MustParseAddrPort("[::1]:5000"), CookieFile: "c"}
	big := make([]ORInstance, MaxORPoolSize+1)
	for i := range big {
		big[i] = ORInstance{Addr: netip.AddrPortFrom(v4.Addr.Addr(), uint16(5000+i)), CookieFile: "c"}
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"one", Config{ORPool: []ORInstance{v4}}, true},
		{"mixed families", Config{ORPool: []ORInstance{v4, v6}}, true},
		{"most", Config{ORPool: big[:MaxORPoolSize]}, true},
		{"too many", Config{ORPool: big}, false},
		{"no cookie", Config{ORPool: []ORInstance{{Addr: v4.Addr}}}, false},
		{"source family", Config{ORPool: []ORInstance{v4, v6}, ORSource: netip.MustParsePrefix("127.0.0.0/8")}, false},
	} {
		if _, err := newDialer(&tc.cfg); (err == nil) != tc.ok {
			t.Errorf("%s: err %v", tc.name, err)
		}
	}
}

// An instance that accepts and never answers costs its clients half the setup time, not
// their tunnel: they are served by their next instance.
func TestPoolORPortHung(t *testing.T) {
	good := startPoolStandIn(t, harness.ExtOROptions{})
	hung := ORInstance{Addr: addrPort(t, silentServer(t)), CookieFile: good.CookieFile}
	pool := append([]ORInstance{hung}, poolOf(t, good)...)
	d, logs := poolDialer(t, pool)
	// A client that ranks the hung instance first.
	var client netip.Addr
	for _, ip := range poolClients(100) {
		k := ip.As16()
		if d.pool.pick(&k, 0, 0) == 0 {
			client = ip
			break
		}
	}
	if !client.IsValid() {
		t.Fatal("no client ranks instance 1 first")
	}
	var port uint16 = 1000
	if got := dialEach(t, d, []*poolStandIn{good}, []netip.Addr{client}, &port); got[client] != 0 {
		t.Fatalf("served by %d", got[client])
	}
	if n := countLines(logs, "level=WARN msg=\"ORPort pool instance down"); n != 1 || !strings.Contains(logs.String(), "deadline") && !strings.Contains(logs.String(), "timeout") {
		t.Errorf("%d warnings:\n%s", n, logs)
	}
}

// Dials from many goroutines at once while an instance goes away: every one succeeds, and
// the instance is reported down once (run it with -race too).
func TestPoolORPortKilledConcurrent(t *testing.T) {
	ss := []*poolStandIn{startPoolStandIn(t, harness.ExtOROptions{}), startPoolStandIn(t, harness.ExtOROptions{}), startPoolStandIn(t, harness.ExtOROptions{})}
	d, logs := poolDialer(t, poolOf(t, ss...))
	clients := poolClients(64)
	errs := make(chan error, len(clients)*4)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < 4; r++ {
				for j := g; j < len(clients); j += 8 {
					c, err := d.dialTor(testCtx(t), net.TCPAddrFromAddrPort(netip.AddrPortFrom(clients[j], 1)), "obfs4")
					if err != nil {
						errs <- err
						continue
					}
					c.Close()
				}
				if g == 0 && r == 0 {
					ss[2].Close()
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := countLines(logs, "level=WARN"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, logs)
	}
}

// The backoff: 1 s, doubling on each failed retry up to 1 min; failures of dials that
// began before the instance went down change nothing; a success ends it.
func TestPoolBackoff(t *testing.T) {
	insts := []ORInstance{
		{Addr: netip.MustParseAddrPort("127.0.0.1:5000"), CookieFile: "c"},
		{Addr: netip.MustParseAddrPort("127.0.0.1:5001"), CookieFile: "c"},
	}
	p := newORPool(slog.New(slog.DiscardHandler), insts)
	var k [16]byte
	for k[15] = 0; p.pick(&k, 0, 0) != 0; k[15]++ {
	}
	t0 := time.Unix(1000, 0)
	err := fmt.Errorf("refused")
	p.failed(0, err, t0, t0)
	want := t0.Add(time.Second)
	p.failed(0, err, t0.Add(-time.Millisecond), t0.Add(500*time.Millisecond)) // in flight before: ignored
	p.succeeded(0, t0.Add(-time.Millisecond), t0.Add(500*time.Millisecond))   // likewise
	if got := p.inst[0].retryAt.Load(); got != want.UnixNano() {
		t.Fatalf("retry at %v, want %v", time.Unix(0, got), want)
	}
	if i := p.pick(&k, 0, want.UnixNano()-1); i != 1 {
		t.Fatalf("down instance picked before its retry time")
	}
	if i := p.pick(&k, 1<<1, want.UnixNano()-1); i != 0 {
		t.Fatalf("with the other tried, a down instance is still tried")
	}
	if i := p.pick(&k, 0, want.UnixNano()); i != 0 {
		t.Fatalf("not retried at its retry time")
	}
	now, step := want, 2*time.Second
	for n := 0; n < 10; n++ {
		p.failed(0, err, now, now)
		if got := time.Duration(p.inst[0].retryAt.Load() - now.UnixNano()); got != step {
			t.Fatalf("retry %d: backoff %v, want %v", n, got, step)
		}
		now = now.Add(step)
		step = min(2*step, poolBackoffMax)
	}
	p.succeeded(0, now, now)
	if p.inst[0].retryAt.Load() != 0 || p.pick(&k, 0, now.UnixNano()) != 0 {
		t.Fatal("not up after a success")
	}
	p.failed(0, err, now.Add(-time.Millisecond), now) // began while it was down: ignored
	if p.inst[0].retryAt.Load() != 0 {
		t.Fatal("down after a stale failure")
	}
	p.failed(0, err, now, now)
	if got := time.Duration(p.inst[0].retryAt.Load() - now.UnixNano()); got != poolBackoffMin {
		t.Fatalf("backoff after being up again: %v", got)
	}
}
