// Command ptbench is the benchmark and load-test tool for bridges.
//
//	ptbench lab  [flags]   compare pairs of PT binaries on this machine (bench/lab)
//	ptbench load [flags]   drive obfs4 clients at a running bridge (bench/loadgen)
//
// `ptbench <command> -h` lists a command's flags.
package main

import (
	"fmt"
	"os"

	"github.com/ptreactor/ptreactor/bench"
)

const usage = `usage: ptbench <command> [flags]

commands:
  lab    launch pairs of PTs as tor does and compare them: bulk, idle, churn, mixed,
         probe, soak and burst scenarios; writes report.md, results.jsonl and charts
  load   be many obfs4 clients against a bridge that is already running

Run 'ptbench <command> -h' for a command's flags.
`

func main() {
	// The lab's reference forwarder is this binary re-executed.
	bench.RunRefPTIfAsked()
	os.Exit(dispatch(os.Args[1:]))
}

func dispatch(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	switch args[0] {
	case "lab":
		return runLab(args[1:])
	case "load":
		return runLoad(args[1:])
	case "-h", "-help", "--help", "help":
		fmt.Print(usage)
		return 0
	}
	fmt.Fprintf(os.Stderr, "ptbench: unknown command %q\n%s", args[0], usage)
	return 2
}
