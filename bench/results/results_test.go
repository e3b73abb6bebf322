package results

import (
	"bytes"
	"reflect"
	"testing"
)

func TestOf(t *testing.T) {
	for _, c := range []struct {
		runs          []float64
		med, min, max float64
	}{
		{[]float64{3, 1, 2}, 2, 1, 3},
		{[]float64{4, 1, 3, 2}, 2.5, 1, 4},
		{[]float64{7}, 7, 7, 7},
	} {
		f := Of("bulk", "p", "mb_per_s", "MB/s", c.runs)
		if f.Value != c.med || f.Min != c.min || f.Max != c.max || f.Runs != len(c.runs) {
			t.Errorf("Of(%v) = %+v, want median %v min %v max %v", c.runs, f, c.med, c.min, c.max)
		}
	}
	if f := Of("bulk", "p", "m", "u", nil); f.Runs != 0 || f.Value != 0 {
		t.Errorf("Of(nil) = %+v", f)
	}
}

func TestRoundTrip(t *testing.T) {
	in := []Figure{
		Of("bulk", "ptreactor", "mb_per_s", "MB/s", []float64{300, 310, 290}),
		{Scenario: "idle", Pair: "obfs4proxy", Metric: "tunnels_held", Value: 8000, Unit: "tunnels", Runs: 1, Min: 8000, Max: 8000, Tunnels: 8000},
	}
	in[0].Tunnels, in[0].Variant = 8, "up"
	var buf bytes.Buffer
	if err := Write(&buf, in); err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(buf.Bytes(), []byte("\n")); n != len(in) {
		t.Fatalf("%d lines for %d figures:\n%s", n, len(in), buf.Bytes())
	}
	out, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("read back %+v, want %+v", out, in)
	}
	if _, err := Read(bytes.NewReader([]byte("{\"value\": \"x\"}\n"))); err == nil {
		t.Fatal("a malformed line was read without error")
	}
}
