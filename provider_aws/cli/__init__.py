"""The `provider-aws` command: serve, mount (the driver on a laptop), validate, version."""
