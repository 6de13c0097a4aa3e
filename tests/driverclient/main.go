// Command driverclient calls a provider socket through the Secrets Store CSI driver's own client code.
//
// It imports sigs.k8s.io/secrets-store-csi-driver/pkg/secrets-store and uses NewPluginClientBuilder (the
// driver's dial options and service config), MountContent (Mount, the driver's checks of the answer and
// fileutil.WritePayloads into the target directory) and Version, so a test sees what the driver sees.
//
// Usage:
//
//	driverclient -socket-dir DIR [-provider aws] [-max-call-recv-msg-size N] [-timeout D] mount < request.json
//	driverclient -socket-dir DIR [-provider aws] [-timeout D] version
//
// The mount request on stdin is a JSON object with the MountRequest field names: attributes, secrets,
// target_path, permission (all strings) and current_object_version ([{"id": ..., "version": ...}]).
// Unknown keys are ignored. The result is one JSON object on stdout; the exit status is 0 whenever the
// call was made (a failed Mount is a result, not an error) and 2 for bad usage or input.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	secretsstore "sigs.k8s.io/secrets-store-csi-driver/pkg/secrets-store"
)

// driverRecvLimit is the default of the driver's --max-call-recv-msg-size flag (cmd/secrets-store-csi-driver).
const driverRecvLimit = 4 * 1024 * 1024

type objectVersion struct {
	ID      string `json:"id"`
	Version string `json:"version"`
}

type mountRequest struct {
	Attributes           string          `json:"attributes"`
	Secrets              string          `json:"secrets"`
	TargetPath           string          `json:"target_path"`
	Permission           string          `json:"permission"`
	CurrentObjectVersion []objectVersion `json:"current_object_version"`
}

type callStatus struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type mountResult struct {
	ObjectVersions map[string]string `json:"object_versions"`
	ErrorCode      string            `json:"error_code"`
	Status         callStatus        `json:"status"`
}

type versionResult struct {
	RuntimeVersion string     `json:"runtime_version"`
	Status         callStatus `json:"status"`
}

// statusOf is the gRPC status the driver's code returned: OK for nil; Unknown with the text for an error
// that did not come from the wire (for example "missing object versions" or a file write failure).
func statusOf(err error) callStatus {
	if err == nil {
		return callStatus{Code: "OK"}
	}
	st, _ := status.FromError(err)
	return callStatus{Code: st.Code().String(), Message: err.Error()}
}

func readRequest(in io.Reader) (mountRequest, error) {
	var req mountRequest
	decoder := json.NewDecoder(in)
	if err := decoder.Decode(&req); err != nil {
		return req, fmt.Errorf("reading the mount request: %w", err)
	}
	if req.TargetPath == "" {
		return req, errors.New("the mount request has no target_path")
	}
	return req, nil
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("driverclient", flag.ContinueOnError)
	flags.SetOutput(stderr)
	socketDir := flags.String("socket-dir", "", "directory holding <provider>.sock (the driver's provider path)")
	provider := flags.String("provider", "aws", "provider name, as in SecretProviderClass spec.provider")
	recvLimit := flags.Int("max-call-recv-msg-size", driverRecvLimit, "the driver's flag of the same name")
	timeout := flags.Duration("timeout", 30*time.Second, "bound on the whole call")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if *socketDir == "" || flags.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: driverclient -socket-dir DIR [flags] mount|version")
		return 2
	}
	command := flags.Arg(0)
	if command != "mount" && command != "version" {
		fmt.Fprintf(stderr, "unknown command %q: want mount or version\n", command)
		return 2
	}
	var req mountRequest
	if command == "mount" {
		var err error
		if req, err = readRequest(stdin); err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	// The driver's own construction (cmd/secrets-store-csi-driver/main.go passes the receive limit this way).
	builder := secretsstore.NewPluginClientBuilder(
		[]string{*socketDir}, grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(*recvLimit)),
	)
	defer builder.Cleanup()
	client, err := builder.Get(ctx, *provider)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}

	var result any
	if command == "version" {
		runtimeVersion, err := secretsstore.Version(ctx, client)
		result = versionResult{RuntimeVersion: runtimeVersion, Status: statusOf(err)}
	} else {
		current := make(map[string]string, len(req.CurrentObjectVersion))
		for _, v := range req.CurrentObjectVersion {
			current[v.ID] = v.Version
		}
		versions, errorCode, err := secretsstore.MountContent(
			ctx, client, req.Attributes, req.Secrets, req.TargetPath, req.Permission, current,
		)
		result = mountResult{ObjectVersions: versions, ErrorCode: errorCode, Status: statusOf(err)}
	}
	encoder := json.NewEncoder(stdout)
	if err := encoder.Encode(result); err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	return 0
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
