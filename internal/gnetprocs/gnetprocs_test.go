package gnetprocs

import (
	"runtime"
	"testing"
)

func TestEventLoopsLeavesOneProcessor(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	n := EventLoops()
	if n != before {
		t.Fatalf("EventLoops() = %d, want the %d processors there were", n, before)
	}
	if got := runtime.GOMAXPROCS(0); got != n+1 {
		t.Fatalf("GOMAXPROCS = %d after EventLoops() = %d, want one more", got, n)
	}
	if again := EventLoops(); again != n || runtime.GOMAXPROCS(0) != n+1 {
		t.Fatalf("a second call gave %d loops and GOMAXPROCS %d, want %d and %d", again, runtime.GOMAXPROCS(0), n, n+1)
	}
}
