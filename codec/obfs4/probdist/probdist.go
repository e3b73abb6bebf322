// Package probdist holds obfs4's "protocol polymorphism": per-bridge weighted
// distributions from which each side draws how long its bursts are and how long it waits
// between writes (ScrambleSuit §4 style).
//
// A distribution is defined by a seed. The seed drives a math/rand.Rand over the obfs4
// DRBG through the Go 1 math/rand algorithms (Perm, Intn, Float64), so a seed yields the
// same table here as in obfs4proxy and lyrebird: a random subset of at most 100 values of
// the range, a random weight for each, and a Vose alias table over them. Drawing from the
// table, on the other hand, must be unpredictable to an observer who knows the seed (every
// client learns the bridge's), so samples come from a ChaCha8 generator keyed from
// crypto/rand, one per Dist, which costs no system call per sample.
//
// Building a table runs the DRBG about two thousand times; a bridge builds the same few
// tables for every connection, so the last few are cached and shared (a Table never
// changes once built).
package probdist

import (
	crand "crypto/rand"
	"fmt"
	"math/bits"
	"math/rand"
	randv2 "math/rand/v2"
	"sync"

	"github.com/ptreactor/ptreactor/codec/obfs4/drbg"
)

// maxValues caps how many distinct values a table holds.
const maxValues = 100

// Table is an immutable weighted distribution over [Min, Max]: a set of values, their
// weights, and the Vose alias table built from the weights.
type Table struct {
	Min, Max int
	values   []int32   // offsets from Min, a prefix of a seeded permutation
	weights  []float64 // as drawn (not normalised)
	prob     []float64 // Vose: probability of keeping column i
	alias    []int32   // Vose: the column to take instead
}

// NewTable builds the table for seed over [min, max] (inclusive). With biased set, weights
// are drawn ScrambleSuit style, w_i = (1 − Σ_{j<i} w_j) · U, which favours the first
// values (lyrebird's -obfs4-distBias flag); otherwise each weight is uniform in [0, 1).
// Recently built tables are returned from a small cache.
func NewTable(seed drbg.Seed, min, max int, biased bool) *Table {
	if max < min {
		panic(fmt.Sprintf("probdist: empty range [%d, %d]", min, max))
	}
	k := cacheKey{seed: seed, min: min, max: max, biased: biased}
	if t := cache.get(&k); t != nil {
		return t
	}
	t := buildTable(seed, min, max, biased)
	cache.put(&k, t)
	return t
}

func buildTable(seed drbg.Seed, min, max int, biased bool) *Table {
	rng := rand.New(drbg.New(seed))
	span := max - min + 1
	perm := rng.Perm(span)
	n := rng.Intn(clamp(span, 1, maxValues)) + 1

	t := &Table{Min: min, Max: max}
	t.values = make([]int32, n)
	for i := range t.values {
		t.values[i] = int32(perm[i])
	}
	t.weights = make([]float64, n)
	if biased {
		var sum float64
		for i := range t.weights {
			w := (1 - sum) * rng.Float64()
			t.weights[i] = w
			sum += w
		}
	} else {
		for i := range t.weights {
			t.weights[i] = rng.Float64()
		}
	}
	t.prob, t.alias = vose(t.weights)
	return t
}

// vose builds Vose's alias tables for weights. Both work lists are FIFO, the order the
// peers use, so the tables (not only the distribution) match theirs.
func vose(weights []float64) (prob []float64, alias []int32) {
	n := len(weights)
	var sum float64
	for _, w := range weights {
		sum += w
	}
	prob = make([]float64, n)
	alias = make([]int32, n)
	scaled := make([]float64, n)
	// Each list is a FIFO ring; an index is in at most one list at a time, so n slots each
	// suffice.
	small, large := newRing(n), newRing(n)
	for i, w := range weights {
		scaled[i] = w * float64(n) / sum
		if scaled[i] < 1 {
			small.push(i)
		} else {
			large.push(i)
		}
	}
	for small.len > 0 && large.len > 0 {
		l, g := small.pop(), large.pop()
		prob[l] = scaled[l]
		alias[l] = int32(g)
		scaled[g] = (scaled[g] + scaled[l]) - 1 // the numerically stable form
		if scaled[g] < 1 {
			small.push(g)
		} else {
			large.push(g)
		}
	}
	for large.len > 0 {
		prob[large.pop()] = 1
	}
	for small.len > 0 { // left over only through rounding
		prob[small.pop()] = 1
	}
	return prob, alias
}

type ring struct {
	buf             []int
	head, tail, len int
}

func newRing(n int) *ring { return &ring{buf: make([]int, n)} }

func (r *ring) push(i int) {
	r.buf[r.tail] = i
	r.tail = (r.tail + 1) % len(r.buf)
	r.len++
}

func (r *ring) pop() int {
	i := r.buf[r.head]
	r.head = (r.head + 1) % len(r.buf)
	r.len--
	return i
}

func clamp(v, lo, hi int) int {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}

// Len is the number of distinct values the table can yield.
func (t *Table) Len() int { return len(t.values) }

// Value returns the i-th value of the table (Min already added) and its weight as drawn.
func (t *Table) Value(i int) (value int, weight float64) {
	return t.Min + int(t.values[i]), t.weights[i]
}

// Prob returns the probability that a sample is the table's i-th value.
func (t *Table) Prob(i int) float64 {
	var sum float64
	for _, w := range t.weights {
		sum += w
	}
	return t.weights[i] / sum
}

// sample draws with the two uniform numbers the alias method needs: a column and a coin.
func (t *Table) sample(r *randv2.ChaCha8) int {
	x := r.Uint64()
	// A fair die: Lemire's multiply-shift on 32 bits, with rejection for exactness.
	n := uint32(len(t.values))
	hi, lo := bits.Mul32(uint32(x), n)
	if lo < n {
		thresh := -n % n
		for lo < thresh {
			x = r.Uint64()
			hi, lo = bits.Mul32(uint32(x), n)
		}
	}
	i := hi
	// A biased coin from 53 fresh bits (the die used only the low 32 of x; draw anew).
	f := float64(r.Uint64()>>11) / (1 << 53)
	if f > t.prob[i] {
		i = uint32(t.alias[i])
	}
	return t.Min + int(t.values[i])
}

// Dist is one connection's view of a distribution: the (shared) table for its current seed
// and a private sampler. The table is built on first use, so a Dist that is reseeded
// before it is ever sampled (an obfs4 client, which learns the bridge's seed before it
// writes anything) never pays for the table of its initial seed. A Dist is not safe for
// concurrent use.
type Dist struct {
	seed     drbg.Seed
	min, max int
	biased   bool
	table    *Table
	seeded   bool // rng has been keyed from crypto/rand
	rng      randv2.ChaCha8
}

// New returns a distribution over [min, max] defined by seed (see NewTable).
func New(seed drbg.Seed, min, max int, biased bool) *Dist {
	d := new(Dist)
	d.Init(seed, min, max, biased)
	return d
}

// Init sets up d in place, like New, for a Dist embedded in a larger struct.
func (d *Dist) Init(seed drbg.Seed, min, max int, biased bool) {
	if max < min {
		panic(fmt.Sprintf("probdist: empty range [%d, %d]", min, max))
	}
	d.min, d.max, d.biased = min, max, biased
	d.Reset(seed)
}

// Reset switches d to the distribution of a new seed over the same range (an obfs4 client
// does this when the bridge's PRNG seed packet arrives).
func (d *Dist) Reset(seed drbg.Seed) {
	d.seed = seed
	d.table = nil
}

// Seed returns the seed d's table is built from.
func (d *Dist) Seed() drbg.Seed { return d.seed }

// Table returns the table d samples from, building it if needed.
func (d *Dist) Table() *Table {
	if d.table == nil {
		d.table = NewTable(d.seed, d.min, d.max, d.biased)
	}
	return d.table
}

// Sample draws a value in [min, max] with the table's weights.
func (d *Dist) Sample() int {
	t := d.Table()
	if !d.seeded {
		var k [32]byte
		crand.Read(k[:])
		d.rng.Seed(k)
		d.seeded = true
	}
	return t.sample(&d.rng)
}

// Min and Max report the range.
func (d *Dist) Min() int { return d.min }
func (d *Dist) Max() int { return d.max }

// The cache: a handful of recent tables, replaced round robin. A bridge uses one or two
// seeds for all its connections (length and delay), so a tiny cache always hits; clients
// churn through it, which costs them nothing they would not pay anyway.
const cacheSize = 8

type cacheKey struct {
	seed     drbg.Seed
	min, max int
	biased   bool
}

type tableCache struct {
	mu    sync.Mutex
	keys  [cacheSize]cacheKey
	vals  [cacheSize]*Table
	clock int
}

var cache tableCache

func (c *tableCache) get(k *cacheKey) *Table {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.vals {
		if c.vals[i] != nil && c.keys[i] == *k {
			return c.vals[i]
		}
	}
	return nil
}

func (c *tableCache) put(k *cacheKey, t *Table) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.vals {
		if c.vals[i] != nil && c.keys[i] == *k {
			return // built twice concurrently; either copy is fine
		}
	}
	c.keys[c.clock], c.vals[c.clock] = *k, t
	c.clock = (c.clock + 1) % cacheSize
}
