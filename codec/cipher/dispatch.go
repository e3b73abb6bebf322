package cipher

import (
	"fmt"
	"strings"
	"sync/atomic"
)

// generic is the pure-Go variant, available everywhere.
var generic = &variant{name: "generic", kernels: []kernel{genericKernel}}

// active is the variant new boxes and XORKeyStream use: chosen once from the CPU's
// features at start-up (best), changed only by Use.
var active atomic.Pointer[variant]

func init() { active.Store(best()) }

// best is the fastest variant this CPU runs: the last of available().
func best() *variant {
	v := available()
	return v[len(v)-1]
}

// Use forces the kernel variant by name ("generic", "sse2", "avx2"; "ssse3", the name
// DESIGN.md's -cpu list uses, means "sse2": Salsa20's rotations gain nothing from
// SSSE3); "" or "auto" goes back to the one picked for this CPU. A variant the CPU or
// build lacks is an error and changes nothing. It is meant for start-up (the -cpu
// flag, PTREACTOR_CPU) and tests: boxes made before the call keep the variant they
// were made with.
func Use(name string) error {
	name = strings.ToLower(strings.TrimSpace(name))
	switch name {
	case "", "auto":
		active.Store(best())
		return nil
	case "ssse3":
		name = "sse2"
	}
	var names []string
	for _, v := range available() {
		if v.name == name {
			active.Store(v)
			return nil
		}
		names = append(names, v.name)
	}
	return fmt.Errorf("cipher: variant %q not available on this CPU/build (have %s)", name, strings.Join(names, ", "))
}

// Active names the variant in use, for the log and -version.
func Active() string { return active.Load().name }

// Variants names the variants this CPU and build can run, slowest first; Use accepts
// each of them.
func Variants() []string {
	var names []string
	for _, v := range available() {
		names = append(names, v.name)
	}
	return names
}
