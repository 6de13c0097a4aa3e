// Package mlog provides the functions of monis.app/mlog that the Secrets Store CSI driver calls: its
// pkg/secrets-store (Fatal, at the CSI server's start-up) and its cmd/secrets-store-csi-driver (Setup,
// FormatText, FormatJSON, ValidateAndSetKlogLevelAndFormatGlobally, Error, Fatal). See go.mod here for why
// it is not the real module. The driver logs through klog; mlog only chose klog's output format, and this
// stand-in keeps klog's own text format whichever format is asked for.
package mlog

import (
	"context"
	"fmt"
	"os"
)

// LogFormat names a log output format, as mlog.LogFormat does.
type LogFormat string

// The two formats the driver's --log-format-json flag chooses between.
const (
	FormatText LogFormat = "text"
	FormatJSON LogFormat = "json"
)

// Setup returns the function the driver defers to flush logs at exit; klog writes stderr unbuffered here.
func Setup() func() {
	return func() { _ = os.Stderr.Sync() }
}

// ValidateAndSetKlogLevelAndFormatGlobally checks the klog verbosity and format the driver passes. The
// level's type parameter stands for klog.Level (an int32) so this module needs no klog dependency.
func ValidateAndSetKlogLevelAndFormatGlobally[L ~int32](_ context.Context, level L, format LogFormat) error {
	if level < 0 {
		return fmt.Errorf("invalid log level %d: must not be negative", level)
	}
	if format != FormatText && format != FormatJSON {
		return fmt.Errorf("invalid log format %q: must be %q or %q", format, FormatText, FormatJSON)
	}
	return nil
}

// Error writes msg, err and its key/value pairs to stderr.
func Error(msg string, err error, keysAndValues ...any) {
	fmt.Fprintln(os.Stderr, append([]any{"error:", msg, err}, keysAndValues...)...)
}

// Fatal writes err and its key/value pairs to stderr and exits with status 1, as mlog.Fatal does.
func Fatal(err error, keysAndValues ...any) {
	fmt.Fprintln(os.Stderr, append([]any{"fatal:", err}, keysAndValues...)...)
	os.Exit(1)
}
