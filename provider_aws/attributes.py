"""Names fixed by others: the Mount attributes the driver sets, the token audiences AWS accepts and
the ServiceAccount annotation IRSA reads.

Named once here so that the parser, the identity layer, the access line and `provider-aws mount`
(which builds requests the way the driver does) cannot drift apart.
"""

from __future__ import annotations

__all__ = [
    "EPHEMERAL",
    "IRSA_AUDIENCE",
    "POD_IDENTITY_AUDIENCE",
    "POD_NAME",
    "POD_NAMESPACE",
    "POD_UID",
    "ROLE_ARN_ANNOTATION",
    "SECRET_PROVIDER_CLASS",
    "SERVICE_ACCOUNT",
    "TOKENS",
]

# Set by the driver on every Mount (podInfoOnMount, and tokenRequests for TOKENS).
POD_NAME = "csi.storage.k8s.io/pod.name"
POD_NAMESPACE = "csi.storage.k8s.io/pod.namespace"
POD_UID = "csi.storage.k8s.io/pod.uid"
SERVICE_ACCOUNT = "csi.storage.k8s.io/serviceAccount.name"
EPHEMERAL = "csi.storage.k8s.io/ephemeral"
TOKENS = "csi.storage.k8s.io/serviceAccount.tokens"
SECRET_PROVIDER_CLASS = "secretProviderClass"

# Audiences of the ServiceAccount tokens: STS (IRSA) and the EKS Pod Identity agent.
IRSA_AUDIENCE = "sts.amazonaws.com"
POD_IDENTITY_AUDIENCE = "pods.eks.amazonaws.com"

# The ServiceAccount annotation naming the IAM role IRSA assumes.
ROLE_ARN_ANNOTATION = "eks.amazonaws.com/role-arn"
