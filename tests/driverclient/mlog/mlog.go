// Package mlog provides the one function of monis.app/mlog that the Secrets Store CSI driver's
// pkg/secrets-store calls (see go.mod here for why it is not the real module).
package mlog

import (
	"fmt"
	"os"
)

// Fatal writes err and its key/value pairs to stderr and exits with status 1, as mlog.Fatal does.
func Fatal(err error, keysAndValues ...any) {
	fmt.Fprintln(os.Stderr, append([]any{"fatal:", err}, keysAndValues...)...)
	os.Exit(1)
}
