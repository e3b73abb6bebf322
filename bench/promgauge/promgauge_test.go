package promgauge

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const page = `# HELP go_gc_duration_seconds A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0"} 2.4e-05
go_goroutines_other 9
# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 17
go_threads 8 1700000000000
`

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name string
		want float64
		err  string
	}{
		{"go_goroutines", 17, ""},
		{"go_threads", 8, ""},
		{"go_gc_duration_seconds", 0, "no sample"},
		{"go_memstats_alloc_bytes", 0, "no sample"},
	} {
		v, err := Parse([]byte(page), tc.name)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: %v, %v; want error %q", tc.name, v, err, tc.err)
			}
			continue
		}
		if err != nil || v != tc.want {
			t.Errorf("%s: %v, %v; want %v", tc.name, v, err, tc.want)
		}
	}
	for _, bad := range []string{"go_goroutines x\n", "go_goroutines 1 2 3\n", "go_goroutines NaN"} {
		if v, err := Parse([]byte(bad), "go_goroutines"); err == nil {
			t.Errorf("%q: %v, want an error", bad, v)
		}
	}
}

// TestRead serves a page over real HTTP on 127.0.0.1, and a page that is not there.
func TestRead(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, page)
	}))
	defer srv.Close()
	v, err := Read(context.Background(), srv.URL+"/metrics", "go_goroutines")
	if err != nil || v != 17 {
		t.Fatalf("Read: %v, %v", v, err)
	}
	if _, err := Read(context.Background(), srv.URL+"/nothing", "go_goroutines"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("Read of a missing page: %v", err)
	}
}

// FuzzParse: any page gives a value or an error, never a panic, and a value found is the
// one the page's line carries.
func FuzzParse(f *testing.F) {
	f.Add([]byte(page), "go_goroutines")
	f.Add([]byte("go_goroutines\t+Inf\n"), "go_goroutines")
	f.Fuzz(func(t *testing.T, text []byte, name string) {
		v, err := Parse(text, name)
		if err == nil && !strings.Contains(string(text), name) {
			t.Fatalf("value %v for %q not in the page", v, name)
		}
	})
}
