// A stand-in for monis.app/mlog, which the Go module proxy reachable from this project's machines does not
// serve (403 "This module version is not available" for v0.0.2, the version the driver requires). It has the
// few functions the driver's binary and its pkg/secrets-store call (see mlog.go); driverclient reaches none
// of them, the driver binary built from this module (make driver) calls them at start-up.
module monis.app/mlog

go 1.24.7
