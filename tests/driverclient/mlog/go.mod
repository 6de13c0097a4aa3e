// A stand-in for monis.app/mlog, which the Go module proxy reachable from this project's machines does not
// serve (403 "This module version is not available" for v0.0.2, the version the driver requires). The
// driver's pkg/secrets-store imports it for one call, mlog.Fatal in server.go (the CSI server's start-up),
// which driverclient never reaches; the provider client code it runs does not log through mlog.
module monis.app/mlog

go 1.24.7
