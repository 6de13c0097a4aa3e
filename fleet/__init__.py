"""Fleet-scale simulation: K provider processes against account-wide AWS quotas (`make fleet`)."""
