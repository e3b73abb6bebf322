package lab

import (
	"os"
	"os/exec"
	"testing"

	"golang.org/x/sys/unix"
)

// TestLowerFileLimit lowers a real child's RLIMIT_NOFILE around its open descriptors, holes
// included (the limit bounds descriptor numbers), and puts it back.
func TestLowerFileLimit(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	cmd := exec.Command("sleep", "30")
	// fds 3, 5 and 6 open, 4, 7 and 8 closed; above, whatever this process let the child
	// inherit.
	cmd.ExtraFiles = []*os.File{r, nil, w, r, nil, nil}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	pid := cmd.Process.Pid
	var before unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &before); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ margin, want int }{{1, 5}, {2, 8}, {3, 9}} {
		used, limit, restore, err := lowerFileLimit(pid, tc.margin)
		if err != nil {
			t.Fatal(err)
		}
		var now unix.Rlimit
		if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &now); err != nil {
			t.Fatal(err)
		}
		if used < 6 || limit != tc.want || now.Cur != uint64(tc.want) || now.Max != before.Max {
			t.Errorf("margin %d: %d open, limit %d (kernel: %d/%d), want 6 or more open, limit %d", tc.margin, used, limit, now.Cur, now.Max, tc.want)
		}
		if err := restore(); err != nil {
			t.Fatal(err)
		}
		if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &now); err != nil || now != before {
			t.Fatalf("restored to %+v (%v), want %+v", now, err, before)
		}
	}
}
