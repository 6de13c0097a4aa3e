// Command csinode plays the kubelet against a CSI node plugin (the Secrets Store CSI driver): it calls
// NodePublishVolume and NodeUnpublishVolume over the plugin's Unix socket with the CSI spec's own Go client.
//
// Usage:
//
//	csinode -endpoint SOCKET [-timeout D] probe
//	csinode -endpoint SOCKET [-timeout D] publish < request.json
//	csinode -endpoint SOCKET [-timeout D] unpublish < request.json
//
// The request on stdin is a JSON object: volume_id, target_path and, for publish, volume_context (the
// attributes the kubelet sends for an inline ephemeral volume: the volume's own attributes plus
// csi.storage.k8s.io/pod.name, pod.namespace, pod.uid, serviceAccount.name, serviceAccount.tokens and
// ephemeral) and secrets (the nodePublishSecretRef's data). publish asks for a read-only mount volume, as
// the kubelet does for a CSI inline volume the pod mounts read-only. The result is one JSON object on
// stdout, {"code": "OK"|gRPC code name, "message": ...}; the exit status is 0 whenever the call was made and
// 2 for bad usage, bad input or a socket that cannot be reached.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

type request struct {
	VolumeID      string            `json:"volume_id"`
	TargetPath    string            `json:"target_path"`
	VolumeContext map[string]string `json:"volume_context"`
	Secrets       map[string]string `json:"secrets"`
}

type result struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func usage(msg string) {
	fmt.Fprintln(os.Stderr, "csinode:", msg)
	os.Exit(2)
}

func readRequest() request {
	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		usage("reading the request: " + err.Error())
	}
	var req request
	if err := json.Unmarshal(raw, &req); err != nil {
		usage("the request is not a JSON object: " + err.Error())
	}
	return req
}

func call(ctx context.Context, conn *grpc.ClientConn, command string) error {
	switch command {
	case "probe":
		_, err := csi.NewIdentityClient(conn).Probe(ctx, &csi.ProbeRequest{})
		return err
	case "publish":
		req := readRequest()
		_, err := csi.NewNodeClient(conn).NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{
			VolumeId:   req.VolumeID,
			TargetPath: req.TargetPath,
			VolumeCapability: &csi.VolumeCapability{
				AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
				AccessMode: &csi.VolumeCapability_AccessMode{
					Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY,
				},
			},
			Readonly:      true,
			VolumeContext: req.VolumeContext,
			Secrets:       req.Secrets,
		})
		return err
	case "unpublish":
		req := readRequest()
		_, err := csi.NewNodeClient(conn).NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{
			VolumeId:   req.VolumeID,
			TargetPath: req.TargetPath,
		})
		return err
	}
	usage("unknown command " + command + " (probe, publish, unpublish)")
	return nil
}

func main() {
	endpoint := flag.String("endpoint", "", "the node plugin's Unix socket")
	timeout := flag.Duration("timeout", 60*time.Second, "deadline of the call")
	flag.Parse()
	if *endpoint == "" || flag.NArg() != 1 {
		usage("usage: csinode -endpoint SOCKET [-timeout D] probe|publish|unpublish")
	}
	conn, err := grpc.NewClient("unix://"+*endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		usage("dialling " + *endpoint + ": " + err.Error())
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	out := result{Code: "OK"}
	if err := call(ctx, conn, flag.Arg(0)); err != nil {
		st := status.Convert(err)
		out = result{Code: st.Code().String(), Message: st.Message()}
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		usage("writing the result: " + err.Error())
	}
}
