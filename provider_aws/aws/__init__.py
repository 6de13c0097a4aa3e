"""The AWS layer: every request to Secrets Manager, SSM and STS goes through `clients`; `fetch` turns a
plan's objects into fetched values, per region, with failover, rotation checks and the value cache."""
