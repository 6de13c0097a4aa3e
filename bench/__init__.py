"""`make bench`: what a Mount costs, measured against the Go provider's request pattern.

moto's server runs behind a delaying, counting proxy; a fake kube-apiserver answers behind the
same delay; `provider-aws serve` runs as a subprocess and is driven over its Unix socket with
the grpclib stub, as the Secrets Store CSI driver does. See `bench/__main__.py` for the flags.
"""
