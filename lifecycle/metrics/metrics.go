// Package metrics serves an engine's counters (reactor.Stats) in the Prometheus text
// format, with the Go runtime's and the process's own metrics beside them (heap,
// goroutines, resident memory, open and maximum file descriptors). Its collector reads
// Engine.Stats at each scrape: the reactor keeps the only count of anything, and nothing
// here runs on the data path. Every metric is an aggregate; none has a per-client label.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ptreactor/ptreactor/reactor"
)

// Source is what the collector reads: a *reactor.Engine.
type Source interface {
	Stats() reactor.Stats
}

// collector turns one Stats snapshot per scrape into metrics.
type collector struct {
	src Source

	tunnelsOpen, tunnelsTotal, tunnelLimit, tunnelsNow *prometheus.Desc
	handshakes, replayed, stalled                      *prometheus.Desc
	payload, pauses, closed, shed, acceptErrors        *prometheus.Desc
	held, heldNow                                      *prometheus.Desc
	dialSeconds, dialFailures                          *prometheus.Desc
}

func newCollector(src Source) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("ptreactor_"+name, help, labels, nil)
	}
	return &collector{
		src: src,
		tunnelsOpen: d("tunnels_open", "Tunnels open now: accepted connections not yet closed at both ends.",
			"transport", "role"),
		tunnelsTotal: d("tunnels_total", "Tunnels accepted since start (connections that came onto an event loop; shed ones are not counted).",
			"transport", "role"),
		tunnelsNow:  d("tunnels_active", "Tunnels of every transport counted against ptreactor_tunnels_limit, including those still being set up."),
		tunnelLimit: d("tunnels_limit", "Tunnels ptreactor serves at once before it sheds new connections; derived from the file descriptor limit (process_max_fds)."),
		handshakes: d("handshakes_total", "Transport handshakes by result: completed; failed (the peer's handshake was rejected, replays included); timed_out. plain has no handshake.",
			"transport", "role", "result"),
		replayed: d("handshakes_replayed_total", "Failed handshakes that replayed an earlier client handshake (active probing); also counted as failed.",
			"transport"),
		stalled: d("probes_stalled_total", "Bridge: failed handshakes held open and silent until their stall time, so that a prober learns nothing.",
			"transport"),
		payload: d("payload_bytes_total", "Payload bytes, before transport framing: from_tor were read from tor's side of a tunnel, to_tor written toward it.",
			"direction"),
		pauses: d("pauses_total", "Times a tunnel's source stopped being read because its sink had too many bytes queued (backpressure)."),
		closed: d("tunnels_closed_total", "Tunnels closed because a peer does not read: queue_cap (queued bytes passed the hard cap) or no_drain (nothing accepted for the no-drain timeout).",
			"reason"),
		shed:         d("connections_shed_total", "Connections closed at accept because the tunnel limit or the file descriptor limit was reached."),
		acceptErrors: d("accept_errors_total", "Failed accept calls on the listeners."),
		held:         d("connections_held_total", "Bridge: connections past the tunnel limit held open and silent, then closed, as after a failed handshake, so that an overloaded bridge looks like any other to a prober."),
		heldNow:      d("connections_held", "Bridge: connections past the tunnel limit held now."),
		dialSeconds: d("outbound_dial_seconds", "Latency of successful outbound connections, their handshakes included: to tor's ORPort or Extended ORPort (role server), to the bridge (role client).",
			"role"),
		dialFailures: d("outbound_dial_failures_total", "Failed outbound connections by kind: refused, timed_out, extorport_denied, auth (Extended ORPort authentication), cookie_file, descriptors, other.",
			"role", "kind"),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.tunnelsOpen, c.tunnelsTotal, c.tunnelsNow, c.tunnelLimit, c.handshakes,
		c.replayed, c.stalled, c.payload, c.pauses, c.closed, c.shed, c.acceptErrors, c.held, c.heldNow, c.dialSeconds, c.dialFailures} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.src.Stats()
	role := s.Role.String()
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, t := range s.Transports {
		gauge(c.tunnelsOpen, float64(t.Open), t.Name, role)
		counter(c.tunnelsTotal, float64(t.Total), t.Name, role)
		counter(c.handshakes, float64(t.HandshakesDone), t.Name, role, "completed")
		counter(c.handshakes, float64(t.HandshakesFailed), t.Name, role, "failed")
		counter(c.handshakes, float64(t.HandshakesTimedOut), t.Name, role, "timed_out")
		counter(c.replayed, float64(t.HandshakesReplayed), t.Name)
		counter(c.stalled, float64(t.Stalls), t.Name)
	}
	gauge(c.tunnelsNow, float64(s.Tunnels))
	gauge(c.tunnelLimit, float64(s.TunnelLimit))
	counter(c.payload, float64(s.BytesFromTor), "from_tor")
	counter(c.payload, float64(s.BytesToTor), "to_tor")
	counter(c.pauses, float64(s.Pauses))
	counter(c.closed, float64(s.ClosedHardCap), "queue_cap")
	counter(c.closed, float64(s.ClosedNeverDrain), "no_drain")
	counter(c.shed, float64(s.Shed))
	counter(c.acceptErrors, float64(s.AcceptErrors))
	counter(c.held, float64(s.Held))
	gauge(c.heldNow, float64(s.HeldNow))

	buckets := make(map[float64]uint64, len(s.Dial.Bounds))
	var cum uint64
	for i, b := range s.Dial.Bounds {
		cum += s.Dial.Counts[i]
		buckets[b.Seconds()] = cum
	}
	cum += s.Dial.Counts[len(s.Dial.Bounds)]
	ch <- prometheus.MustNewConstHistogram(c.dialSeconds, cum, s.Dial.Sum.Seconds(), buckets, role)
	for k := range reactor.NumDialFailures {
		counter(c.dialFailures, float64(s.Dial.ByKind[k]), role, k.String())
	}
}

// NewRegistry holds the engine's collector and the standard Go and process collectors.
func NewRegistry(src Source) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(src),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Listen binds a. A unix socket left behind by an earlier process (a socket file that
// nobody answers on) is removed first; any other file in the way is an error.
func Listen(a Address) (net.Listener, error) {
	if a.Network == "unix" {
		if fi, err := os.Lstat(a.Addr); err == nil {
			if fi.Mode().Type() != fs.ModeSocket {
				return nil, fmt.Errorf("%s exists and is not a socket", a.Addr)
			}
			if c, err := net.DialTimeout("unix", a.Addr, time.Second); err == nil {
				c.Close()
				return nil, fmt.Errorf("%s: another process serves this socket", a.Addr)
			}
			if err := os.Remove(a.Addr); err != nil {
				return nil, err
			}
		}
	}
	return net.Listen(a.Network, a.Addr)
}

// Server is a running metrics endpoint.
type Server struct {
	srv  *http.Server
	done chan struct{}
}

// Serve answers scrapes on ln (every path) until Close: at most a few at once, each
// bounded in time, so a slow or hostile client cannot hold the process's memory.
func Serve(ln net.Listener, src Source, log *slog.Logger) *Server {
	h := promhttp.HandlerFor(NewRegistry(src), promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
	s := &Server{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      15 * time.Second,
			IdleTimeout:       time.Minute,
			MaxHeaderBytes:    8 << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("metrics endpoint stopped", "err", err)
		}
	}()
	return s
}

// Close stops the endpoint, letting a scrape in progress finish for up to a second; a unix
// socket's file is removed.
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if s.srv.Shutdown(ctx) != nil {
		s.srv.Close()
	}
	<-s.done
}
