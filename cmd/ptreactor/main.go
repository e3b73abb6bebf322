// Command ptreactor is a Tor pluggable transport proxy; tor starts it as a managed proxy
// (ClientTransportPlugin / ServerTransportPlugin ... exec /path/to/ptreactor [flags]) and
// configures it through the environment. The flags below are the only other settings; the
// conversation with tor is package lifecycle.
package main

import (
	"flag"
	"os"
	"runtime/debug"

	"github.com/ptreactor/ptreactor/lifecycle"
)

// version is set at link time (-ldflags "-X main.version=v1.2.3"); otherwise it comes from
// the module's build information.
var version = ""

func main() {
	var o lifecycle.Options
	fs, showVersion := newFlagSet(&o)
	if err := fs.Parse(os.Args[1:]); err != nil {
		if err == flag.ErrHelp {
			os.Exit(lifecycle.ExitClean)
		}
		os.Exit(lifecycle.ExitSetup)
	}
	o.Args = fs.Args()
	bi, _ := debug.ReadBuildInfo()
	o.Version = moduleVersion(version, bi)
	if *showVersion {
		os.Exit(lifecycle.PrintVersion(os.Stdout, o))
	}
	os.Exit(lifecycle.Run(o))
}

// newFlagSet registers every flag into o; the returned bool is -version. The man page
// (doc/ptreactor.1) and the README document each flag registered here, which a test checks.
func newFlagSet(o *lifecycle.Options) (*flag.FlagSet, *bool) {
	fs := flag.NewFlagSet("ptreactor", flag.ContinueOnError)
	showVersion := fs.Bool("version", false, "print the version and the cipher variant, then exit")
	fs.StringVar(&o.LogLevel, "log-level", "notice", "log level: error, warning, notice, info or debug")
	fs.StringVar(&o.LogFile, "log-file", "", "log file (default: ptreactor.log in TOR_PT_STATE_LOCATION)")
	fs.BoolVar(&o.UnsafeLogging, "unsafe-logging", false, "do not scrub IP addresses from logs")
	fs.StringVar(&o.CPU, "cpu", "", "cipher variant: generic, sse2 or avx2 (default: env PTREACTOR_CPU, else chosen by CPU)")
	fs.StringVar(&o.ORPortSource, "orport-source", "", "CIDR to pick source addresses toward the (Ext)ORPort from")
	fs.StringVar(&o.ORPortPool, "orport-pool", "", "bridge: feed a pool of tor Extended ORPorts instead of tor's own: a file (path beginning with / or .) of \"host:port cookie-file\" lines, or a list host:port=cookie-file,...")
	fs.StringVar(&o.ProxyProtocol, "proxy-protocol", "", "bridge: connections from these CIDRs (comma-separated; a load balancer such as HAProxy) start with a PROXY protocol v1 or v2 header naming the real client")
	fs.StringVar(&o.Metrics, "metrics", "", "serve Prometheus metrics at this loopback IP:port or absolute unix socket path (default: off)")
	fs.BoolVar(&o.MetricsPublic, "metrics-public", false, "allow a -metrics address that is not loopback (the endpoint has no authentication)")
	fs.DurationVar(&o.StatusInterval, "status-interval", lifecycle.DefaultStatusInterval, "how often to send tor a STATUS TYPE=stats line per transport (0: never)")
	fs.BoolVar(&o.Obfs4DistBias, "obfs4-distBias", false, "obfs4: draw packet lengths and delays from a biased (ScrambleSuit-style) distribution, as lyrebird's flag of the same name")
	return fs, showVersion
}

// moduleVersion is the version ptreactor reports: the one set at link time, else the
// module version the go command recorded (v1.2.3 for "go install ...@v1.2.3", a tag or
// pseudo-version for a build in a VCS checkout), else "devel".
func moduleVersion(linked string, bi *debug.BuildInfo) string {
	if linked != "" {
		return linked
	}
	if bi != nil && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
