package main

import (
	"archive/zip"
	"bufio"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/internal/pttest"
)

func TestModuleVersion(t *testing.T) {
	tagged := &debug.BuildInfo{Main: debug.Module{Path: "github.com/ptreactor/ptreactor", Version: "v1.2.3"}}
	local := &debug.BuildInfo{Main: debug.Module{Path: "github.com/ptreactor/ptreactor", Version: "(devel)"}}
	for _, c := range []struct {
		linked string
		bi     *debug.BuildInfo
		want   string
	}{
		{"", tagged, "v1.2.3"},
		{"", local, "devel"},
		{"", &debug.BuildInfo{}, "devel"},
		{"", nil, "devel"},
		{"v2.0.0-rc1", tagged, "v2.0.0-rc1"},
		{"v2.0.0-rc1", nil, "v2.0.0-rc1"},
	} {
		if got := moduleVersion(c.linked, c.bi); got != c.want {
			t.Errorf("moduleVersion(%q, %+v) = %q, want %q", c.linked, c.bi, got, c.want)
		}
	}
}

const fakeVersion = "v0.0.0-test"

// "go install github.com/ptreactor/ptreactor/cmd/ptreactor@v0.0.0-test", served this tree as
// that version from a module proxy in a directory, gives a binary that reports v0.0.0-test
// in -version, in the STATUS version line and in the log's start line. Dependencies come
// from the module cache's download directory (a proxy in the same layout), then from the
// configured GOPROXY; a fresh GOMODCACHE keeps the fake version out of the real one.
func TestGoInstallVersion(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	proxy := filepath.Join(tmp, "proxy")
	writeModuleProxy(t, proxy, filepath.Join("..", ".."))

	goEnv := func(k string) string {
		out, err := exec.Command(goBin, "env", k).Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out))
	}
	proxies := []string{"file://" + proxy, "file://" + filepath.Join(goEnv("GOMODCACHE"), "cache", "download")}
	if p := goEnv("GOPROXY"); p != "" && p != "off" {
		proxies = append(proxies, p)
	}
	gobin := filepath.Join(tmp, "bin")
	cmd := exec.Command(goBin, "install", "github.com/ptreactor/ptreactor/cmd/ptreactor@"+fakeVersion)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(),
		"GOPROXY="+strings.Join(proxies, ","),
		"GOMODCACHE="+filepath.Join(tmp, "modcache"),
		"GOBIN="+gobin,
		"GOFLAGS=-modcacherw -trimpath", // -modcacherw: t.TempDir can remove the cache
		"GOSUMDB=off", "GONOSUMDB=*", "GONOSUMCHECK=1", "GOTOOLCHAIN=local", "GOWORK=off", "GO111MODULE=on",
	)
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install: %v\n%s", err, out)
	}
	t.Logf("go install took %v", time.Since(start).Round(time.Second))
	bin := filepath.Join(gobin, "ptreactor")

	out, err := exec.Command(bin, "-version", "-cpu", "generic").Output()
	if err != nil || string(out) != "ptreactor "+fakeVersion+" cipher=generic\n" {
		t.Errorf("-version: %q, %v", out, err)
	}
	checkRunVersion(t, bin, fakeVersion)
}

// A build with -ldflags -X main.version reports that version everywhere.
func TestLinkedVersion(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "ptreactor")
	cmd := exec.Command("go", "build", "-ldflags", "-X main.version=v9.8.7-linked", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "-version", "-cpu", "generic").Output()
	if err != nil || string(out) != "ptreactor v9.8.7-linked cipher=generic\n" {
		t.Errorf("-version: %q, %v", out, err)
	}
	checkRunVersion(t, bin, "v9.8.7-linked")
}

// checkRunVersion runs bin as tor's client PT and finds version in the STATUS version line,
// in the LOG start notice and in the log file's start line.
func checkRunVersion(t *testing.T, bin, version string) {
	t.Helper()
	state := t.TempDir()
	cmd := exec.Command(bin)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, pttest.ClientEnv(state, "plain")...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close() // TOR_PT_EXIT_ON_STDIN_CLOSE=1: the end
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("exit: %v", err)
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("no exit after stdin closed")
		}
	}()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	status := regexp.MustCompile(`^STATUS TRANSPORT=plain TYPE=version IMPLEMENTATION="ptreactor" VERSION="` + regexp.QuoteMeta(version) + `"$`)
	notice := "LOG SEVERITY=notice MESSAGE=\"ptreactor " + version + " starting cipher="
	sawStatus, sawNotice := false, false
	timeout := time.After(10 * time.Second)
	for l := ""; l != "CMETHODS DONE"; {
		var ok bool
		select {
		case l, ok = <-lines:
			if !ok {
				t.Fatal("stdout closed before CMETHODS DONE")
			}
		case <-timeout:
			t.Fatal("no CMETHODS DONE")
		}
		sawStatus = sawStatus || status.MatchString(l)
		sawNotice = sawNotice || strings.HasPrefix(l, notice)
	}
	if !sawStatus || !sawNotice {
		t.Errorf("version %s: STATUS line seen %v, LOG start notice seen %v", version, sawStatus, sawNotice)
	}
	b, err := os.ReadFile(filepath.Join(state, "ptreactor.log"))
	if err != nil || !strings.Contains(string(b), " notice ptreactor "+version+" starting cipher=") {
		t.Errorf("log file has no start line with %s: %v\n%s", version, err, b)
	}
}

// writeModuleProxy lays out a GOPROXY directory holding the module in root at fakeVersion:
// .info, .mod and the .zip whose files sit under "<module>@<version>/", as the go command
// downloads them. Directories holding another module (a go.mod of their own) and
// dot-directories are left out, as the go command leaves them out of a module zip.
func writeModuleProxy(t *testing.T, dir, root string) {
	t.Helper()
	const module = "github.com/ptreactor/ptreactor"
	at := filepath.Join(dir, module, "@v")
	if err := os.MkdirAll(at, 0o755); err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"list":                []byte(fakeVersion + "\n"),
		fakeVersion + ".info": []byte(`{"Version":"` + fakeVersion + `","Time":"2026-01-01T00:00:00Z"}`),
		fakeVersion + ".mod":  gomod,
	} {
		if err := os.WriteFile(filepath.Join(at, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Create(filepath.Join(at, fakeVersion+".zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			if rel == "." {
				return nil
			}
			if strings.HasPrefix(d.Name(), ".") || rel == "bin" {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		w, err := zw.Create(module + "@" + fakeVersion + "/" + filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		src, err := os.Open(path)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(w, src)
		return err
	})
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
}
