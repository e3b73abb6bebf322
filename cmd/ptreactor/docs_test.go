package main

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ptreactor/ptreactor/lifecycle"
)

// Every flag main registers has an entry in the man page's OPTIONS (a ".B \-flag" or
// ".BI \-flag ..." line) and a row in the README's flag table, so a new flag without
// documentation fails here.
func TestFlagsDocumented(t *testing.T) {
	man := readRepoFile(t, "doc/ptreactor.1")
	readme := readRepoFile(t, "README.md")
	var o lifecycle.Options
	fs, _ := newFlagSet(&o)
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		n++
		roff := regexp.QuoteMeta(`\-` + strings.ReplaceAll(f.Name, "-", `\-`))
		if !regexp.MustCompile(`(?m)^\.BI? ` + roff + `( |$)`).MatchString(man) {
			t.Errorf("flag -%s has no entry in doc/ptreactor.1", f.Name)
		}
		if !regexp.MustCompile("(?m)^\\| `-" + regexp.QuoteMeta(f.Name) + "[ `]").MatchString(readme) {
			t.Errorf("flag -%s has no row in README.md's flag table", f.Name)
		}
	})
	if n == 0 {
		t.Fatal("no flags registered")
	}
}

func readRepoFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
