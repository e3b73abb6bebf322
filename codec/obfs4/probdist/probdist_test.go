package probdist

import (
	"math"
	"testing"

	"github.com/ptreactor/ptreactor/codec/obfs4/drbg"
)

func vectorSeed() drbg.Seed {
	var s drbg.Seed
	for i := range s {
		s[i] = byte(i)
	}
	return s
}

// TestKATLength checks the [0, 1448] table lyrebird builds for seed 00..17 (notes §13).
func TestKATLength(t *testing.T) {
	seed := vectorSeed()
	tb := buildTable(seed, 0, 1448, false)
	if tb.Len() != 13 {
		t.Fatalf("%d values, want 13", tb.Len())
	}
	wantV := []int{1090, 1347, 1007, 551, 1021}
	wantW := []float64{0.240169, 0.111602, 0.405312}
	for i, w := range wantV {
		if v, _ := tb.Value(i); v != w {
			t.Errorf("value %d = %d, want %d", i, v, w)
		}
	}
	for i, w := range wantW {
		if _, got := tb.Value(i); math.Abs(got-w) > 5e-7 {
			t.Errorf("weight %d = %f, want %f", i, got, w)
		}
	}
}

// TestKATDelay checks the [0, 100] table for the same seed.
func TestKATDelay(t *testing.T) {
	seed := vectorSeed()
	tb := buildTable(seed, 0, 100, false)
	if tb.Len() != 53 {
		t.Fatalf("%d values, want 53", tb.Len())
	}
	for i, w := range []int{16, 30, 4, 11, 72} {
		if v, _ := tb.Value(i); v != w {
			t.Errorf("value %d = %d, want %d", i, v, w)
		}
	}
}

// TestVose checks that each alias table encodes the weights it was built from: the mass
// the table gives each value (its own column's kept share plus what other columns alias to
// it) must equal the value's normalised weight.
func TestVose(t *testing.T) {
	for i := 0; i < 200; i++ {
		seed := drbg.NewSeed()
		for _, biased := range []bool{false, true} {
			tb := buildTable(seed, 0, 1448, biased)
			n := tb.Len()
			mass := make([]float64, n)
			for c := 0; c < n; c++ {
				if tb.prob[c] < 0 || tb.prob[c] > 1 {
					t.Fatalf("prob[%d] = %f", c, tb.prob[c])
				}
				mass[c] += tb.prob[c] / float64(n)
				mass[tb.alias[c]] += (1 - tb.prob[c]) / float64(n)
			}
			for c := 0; c < n; c++ {
				if d := math.Abs(mass[c] - tb.Prob(c)); d > 1e-9 {
					t.Fatalf("seed %x biased=%v value %d: mass %g, weight %g", seed, biased, c, mass[c], tb.Prob(c))
				}
			}
		}
	}
}

// TestSampleDistribution draws many samples and checks each value's frequency against its
// weight (a loose 5-sigma bound, so it does not flake) and that nothing outside the table
// appears.
func TestSampleDistribution(t *testing.T) {
	const draws = 200000
	d := New(vectorSeed(), 0, 100, false)
	tb := d.Table()
	index := map[int]int{}
	for i := 0; i < tb.Len(); i++ {
		v, _ := tb.Value(i)
		index[v] = i
	}
	counts := make([]int, tb.Len())
	for i := 0; i < draws; i++ {
		v := d.Sample()
		j, ok := index[v]
		if !ok {
			t.Fatalf("sample %d is not in the table", v)
		}
		counts[j]++
	}
	for j, c := range counts {
		p := tb.Prob(j)
		sigma := math.Sqrt(draws * p * (1 - p))
		if math.Abs(float64(c)-draws*p) > 5*sigma+1 {
			v, _ := tb.Value(j)
			t.Errorf("value %d: %d draws, expected %.0f ± %.0f", v, c, draws*p, sigma)
		}
	}
}

func TestRangeAndMin(t *testing.T) {
	d := New(drbg.NewSeed(), 50, 60, true)
	for i := 0; i < 10000; i++ {
		if v := d.Sample(); v < 50 || v > 60 {
			t.Fatalf("sample %d outside [50, 60]", v)
		}
	}
	one := New(drbg.NewSeed(), 7, 7, false)
	if v := one.Sample(); v != 7 {
		t.Fatalf("single-value range gave %d", v)
	}
}

// TestUnpredictable: two Dists with the same seed share a table but not their samples.
func TestUnpredictable(t *testing.T) {
	a, b := New(vectorSeed(), 0, 1448, false), New(vectorSeed(), 0, 1448, false)
	if a.Table() != b.Table() {
		t.Error("same seed built two tables (cache miss)")
	}
	same := 0
	for i := 0; i < 1000; i++ {
		if a.Sample() == b.Sample() {
			same++
		}
	}
	// 13 values, the largest weight below 0.3: equal draws ~ Σp² < 0.3.
	if same > 400 {
		t.Errorf("%d of 1000 samples equal across independent Dists", same)
	}
}

func TestResetIsLazy(t *testing.T) {
	d := New(drbg.NewSeed(), 0, 1448, false)
	d.Reset(vectorSeed())
	if d.table != nil {
		t.Fatal("Reset built a table")
	}
	if v, _ := d.Table().Value(0); v != 1090 {
		t.Fatalf("after Reset, first value %d, want 1090", v)
	}
}

func TestSampleAllocs(t *testing.T) {
	d := New(vectorSeed(), 0, 1448, false)
	d.Sample()
	if n := testing.AllocsPerRun(1000, func() { d.Sample() }); n != 0 {
		t.Fatalf("Sample allocates %v times", n)
	}
}

func BenchmarkSample(b *testing.B) {
	d := New(vectorSeed(), 0, 1448, false)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		d.Sample()
	}
}

func BenchmarkBuildTable(b *testing.B) {
	seed := vectorSeed()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buildTable(seed, 0, 1448, false)
	}
}

// FuzzTable: any seed and range gives a valid alias table and in-range samples.
func FuzzTable(f *testing.F) {
	v := vectorSeed()
	f.Add(v[:], 0, uint16(1448), false)
	f.Add(v[:], 0, uint16(100), true)
	f.Add(make([]byte, 24), -5, uint16(0), false)
	f.Fuzz(func(t *testing.T, seedBytes []byte, min int, span uint16, biased bool) {
		seed, err := drbg.SeedFromBytes(seedBytes)
		if err != nil || min < -1<<20 || min > 1<<20 {
			return
		}
		max := min + int(span%4096)
		tb := buildTable(seed, min, max, biased)
		if tb.Len() < 1 || tb.Len() > maxValues || tb.Len() > max-min+1 {
			t.Fatalf("%d values for a range of %d", tb.Len(), max-min+1)
		}
		for c := 0; c < tb.Len(); c++ {
			if tb.prob[c] < 0 || tb.prob[c] > 1 || int(tb.alias[c]) >= tb.Len() {
				t.Fatalf("column %d: prob %g alias %d", c, tb.prob[c], tb.alias[c])
			}
		}
		d := New(seed, min, max, biased)
		for i := 0; i < 16; i++ {
			if s := d.Sample(); s < min || s > max {
				t.Fatalf("sample %d outside [%d, %d]", s, min, max)
			}
		}
	})
}
