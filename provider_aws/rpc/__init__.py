"""The gRPC edge: the driver's socket and messages, the CSIDriverProvider servicer, its codec, reflection"""
