"""The gRPC edge: the driver's socket, the CSIDriverProvider servicer, its wire codec and reflection."""
