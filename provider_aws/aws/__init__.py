"""The AWS layer: every request to Secrets Manager, SSM and STS goes through `clients` and every failure is
classified in `errors`; `fetch` turns a plan's objects into fetched values, per region, with failover and
`rotation` (version checks and the value cache)."""
