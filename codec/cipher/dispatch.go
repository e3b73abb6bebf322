package cipher

import "fmt"

// Use forces the kernel variant ("generic", "sse2", "avx2"); "" or "auto" picks by CPU.
func Use(variant string) error {
	switch variant {
	case "", "auto", "generic":
		return nil
	}
	return fmt.Errorf("cipher: unknown variant %q", variant)
}

// Active names the variant in use, for the log and -version.
func Active() string { return "generic" }
