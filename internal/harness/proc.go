package harness

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is a started child process whose stdout is read line by line.
type Proc struct {
	Bin   string
	Cmd   *exec.Cmd
	Stdin io.WriteCloser

	lines      chan string
	done       chan struct{} // closed once the process has exited and been reaped
	stderrDone chan struct{} // closed at EOF of stderr
	stderr     tailWriter
}

// ErrNotFound is the error of a binary that does not exist or is not executable.
var ErrNotFound = errors.New("binary not found")

// BaseEnv is what every child gets besides the variables its caller names: PATH and HOME
// of this process.
func BaseEnv() []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
}

// StartProc starts bin with exactly env (see BaseEnv) and args. Its stderr goes to stderr
// (nil: only the tail is kept, see StderrTail); its stdout lines come on Lines. The child
// runs in a process group of its own, which Kill ends, and dies with this process.
func StartProc(bin string, args, env []string, stderr io.Writer) (*Proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.SysProcAttr = childAttr()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	// Our own pipes rather than exec's copying goroutines: Wait then returns when the child
	// exits, even if a grandchild still holds stdout or stderr open.
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		stdin.Close()
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			return nil, &LaunchError{Bin: bin, Kind: ErrNotFound, msg: bin + ": " + ErrNotFound.Error() + ": " + err.Error()}
		}
		return nil, &LaunchError{Bin: bin, Kind: err, msg: bin + ": " + err.Error()}
	}
	p := &Proc{Bin: bin, Cmd: cmd, Stdin: stdin, lines: make(chan string, 1024),
		done: make(chan struct{}), stderrDone: make(chan struct{})}
	p.stderr.w = stderr
	go p.readStdout(outR)
	go func() {
		_, _ = io.Copy(&p.stderr, errR)
		errR.Close()
		close(p.stderrDone)
	}()
	go func() {
		_ = cmd.Wait()
		// Whatever the child left in its group goes with it. The group's id cannot have been
		// reused while a member lives, so this reaches only our own processes.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		close(p.done)
	}()
	return p, nil
}

func (p *Proc) readStdout(r *os.File) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		p.lines <- sc.Text()
	}
	// A line too long for the scanner ends the lines, not the child: keep draining so that
	// it never blocks on a full pipe.
	_, _ = io.Copy(io.Discard, r)
	r.Close()
	close(p.lines)
}

// Lines delivers the child's stdout, one line at a time; it is closed at EOF. The child
// blocks when nobody reads it and its 1,024-line buffer is full.
func (p *Proc) Lines() <-chan string { return p.lines }

// Pid is the child's process id.
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Done is closed when the child has exited and been reaped.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the child has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ExitCode is the child's exit status once Done is closed (-1 if killed by a signal or
// still running).
func (p *Proc) ExitCode() int {
	select {
	case <-p.done:
	default:
		return -1
	}
	return p.Cmd.ProcessState.ExitCode()
}

// Signal sends sig to the child.
func (p *Proc) Signal(sig syscall.Signal) error { return p.Cmd.Process.Signal(sig) }

// Kill kills the child's process group and waits for the child.
func (p *Proc) Kill() {
	_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
	p.Stdin.Close()
	<-p.done
}

// Stop closes the child's stdin, which a managed PT must treat as tor going away
// (TOR_PT_EXIT_ON_STDIN_CLOSE), and waits up to timeout for it to exit; then it kills it.
// It reports whether the child left on its own.
func (p *Proc) Stop(timeout time.Duration) bool {
	p.Stdin.Close()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		p.Kill()
		return false
	}
}

// StderrTail returns the last few KiB the child wrote on stderr.
func (p *Proc) StderrTail() string { return p.stderr.tail() }

// StderrSummary is the child's last words for a one-line error: the first line it wrote on
// stderr (where a flag error or a panic says what went wrong) and the last four (where a
// logged fatal error does).
func (p *Proc) StderrSummary() string { return p.stderr.summary() }

// stderrSettled waits up to d for the child's stderr to reach EOF, so that a tail read
// after an exit holds the last words.
func (p *Proc) stderrSettled(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.stderrDone:
	case <-t.C:
	}
}

// tailWriter keeps the first line and the last tailSize bytes written to it, and passes
// everything on to w.
type tailWriter struct {
	mu    sync.Mutex
	w     io.Writer
	first []byte // up to the first '\n', at most tailSize bytes
	head  bool   // first is complete
	buf   []byte
}

const tailSize = 4 << 10

func (t *tailWriter) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.head {
		line, _, found := bytes.Cut(b, []byte{'\n'})
		t.first = append(t.first, line[:min(len(line), tailSize-len(t.first))]...)
		t.head = found || len(t.first) == tailSize
	}
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - tailSize; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	if t.w != nil {
		_, _ = t.w.Write(b) // a failing sink must not stall the child
	}
	return len(b), nil
}

func (t *tailWriter) tail() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.ToValidUTF8(string(t.buf), "?")
}

func (t *tailWriter) summary() string {
	t.mu.Lock()
	first := strings.ToValidUTF8(string(t.first), "?")
	t.mu.Unlock()
	lines := strings.Split(strings.TrimRight(t.tail(), "\n"), "\n")
	if len(lines) > 4 {
		lines = lines[len(lines)-4:]
	}
	if first != "" && first != lines[0] {
		lines = append([]string{first, "..."}, lines...)
	}
	return strings.Join(lines, "\n")
}
