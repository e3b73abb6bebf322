// Package gnetenv removes gnet's logging variables from the environment before gnet reads
// them.
//
// gnet's logging package reads GNET_LOGGING_LEVEL and GNET_LOGGING_FILE in its init
// function and panics on a value it cannot use; a valid GNET_LOGGING_FILE would make it
// write a file outside tor's state directory. Unsetting them from lifecycle.Run would be
// too late, since every init has run by then. This package imports nothing but os, and Go
// (1.21 and later) initialises packages in import-path order among those whose imports are
// ready: "github.com/ptreactor/..." sorts before "go.uber.org/zap", which gnet's logging
// package needs first, so this init always runs before gnet's.
package gnetenv

import "os"

// Removed holds the gnet variables found at start-up and removed, for a warning in the log.
var Removed []string

func init() {
	for _, k := range []string{"GNET_LOGGING_LEVEL", "GNET_LOGGING_FILE"} {
		if v, ok := os.LookupEnv(k); ok {
			Removed = append(Removed, k+"="+v)
			os.Unsetenv(k)
		}
	}
}
