"""The identity layer: who a Mount acts as in AWS (IRSA, Pod Identity, static keys) and in which region."""
