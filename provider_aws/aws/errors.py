"""Every AWS failure, classified once and turned into the ProviderError a user can act on.

    Exception
    ├── AwsCallError                one failed AWS call (after botocore's bounded retries)
    │     .code, .http_status       the service's error code; None when no answer came back
    │     .throttled                a quota was exceeded (THROTTLING_CODES or HTTP 429)
    │     .retriable                server-side or network: worth the failover region
    │     .refused                  the caller may not call this (ACCESS_DENIED_CODES)
    │     .outcome                  throttled, denied or error: the metrics' outcome label
    └── ProviderError (errors.py)   what a Mount answers, with its gRPC status
          ├── NotFoundError         not found: objectName, version or label
          ├── AccessDeniedError     IAM or KMS policy, or STS trust policy
          ├── UnavailableError      5xx, network: the driver retries
          │     └── ThrottledError  throttled after retries
          ├── ConfigError           AWS rejected the request's parameters
          └── PreconditionError     any other refusal

`classify` makes an AwsCallError of whatever botocore raised; `item_error` of one failed item of a
BatchGetSecretValue answer; `to_provider_error` (Secrets Manager, SSM) and `sts_error` (STS
AssumeRoleWithWebIdentity) make the ProviderError. Every service's codes are named here only.
"""

from __future__ import annotations

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ParamValidationError,
    ReadTimeoutError,
)

from provider_aws.attributes import ROLE_ARN_ANNOTATION
from provider_aws.errors import (
    AccessDeniedError,
    CallOutcome,
    ConfigError,
    NotFoundError,
    PreconditionError,
    ProviderError,
    ThrottledError,
    UnavailableError,
)
from provider_aws.model import SecretText

__all__ = [
    "ACCESS_DENIED_CODES",
    "THROTTLING_CODES",
    "AwsCallError",
    "classify",
    "item_error",
    "sts_error",
    "to_provider_error",
]

# Error codes AWS services (Secrets Manager, SSM, STS) answer when a quota is exceeded.
THROTTLING_CODES = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
)
# The caller's policy does not allow the action (Secrets Manager / SSM spelling, STS spelling).
ACCESS_DENIED_CODES = frozenset({"AccessDeniedException", "AccessDenied"})
_NOT_FOUND = frozenset({"ResourceNotFoundException", "ParameterNotFound", "ParameterVersionNotFound"})
_DENIED = ACCESS_DENIED_CODES | {
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredTokenException",
    "ExpiredToken",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "DecryptionFailure",
    "KMSAccessDeniedException",
    "KMSDisabledException",
    "KMSInvalidStateException",
    "KMSNotFoundException",
}
_INVALID = frozenset({"ValidationException", "InvalidParameterException", "InvalidParameterValueException"})
# Codes of a failed BatchGetSecretValue item that are the service's fault, not the request's.
_SERVER_ITEM_CODES = frozenset({"InternalServiceError", "InternalFailure", "ServiceUnavailable"})
# STS could not reach the identity provider that issued the token: a retry may succeed.
_STS_TRANSIENT = frozenset({"IDPCommunicationError"})


class AwsCallError(Exception):
    """A classified failure of one AWS call (after botocore's own bounded retries)."""

    def __init__(
        self,
        service: str,
        operation: str,
        code: str,
        http_status: int | None,
        detail: str,
        *,
        server_side: bool | None = None,
    ) -> None:
        super().__init__(service, operation, code)
        self.service = service
        self.operation = operation
        self.code = code
        self.http_status = http_status
        self.detail = detail
        self._server_side = server_side

    @property
    def retriable(self) -> bool:
        """A server-side or network failure (never a 4xx); `fails_over` adds throttles and denials."""
        if self._server_side is not None:
            return self._server_side
        return self.http_status is None or self.http_status >= 500

    @property
    def throttled(self) -> bool:
        return self.code in THROTTLING_CODES or self.http_status == 429

    @property
    def refused(self) -> bool:
        return self.code in ACCESS_DENIED_CODES

    @property
    def fails_over(self) -> bool:
        """The object is asked of the next region: after a retriable failure, a throttle left after the
        retries, or a denial. The Go provider (3.1.1, run side by side in `make compat`) stops only on the
        client errors its SDK models for the operation (not found, invalid request, a KMS key); a
        throttle or a denial in the primary region mounts from the failover region there too."""
        return self.retriable or self.throttled or self.refused

    @property
    def outcome(self) -> CallOutcome:
        if self.throttled:
            return CallOutcome.THROTTLED
        return CallOutcome.DENIED if self.code in _DENIED else CallOutcome.ERROR

    def __str__(self) -> str:
        return f"{self.service} {self.operation} failed: {self.code}"


def classify(service: str, operation: str, error: Exception) -> AwsCallError:
    """The AwsCallError for what botocore raised."""
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        meta = error.response.get("ResponseMetadata", {})
        status = meta.get("HTTPStatusCode")
        return AwsCallError(
            service,
            operation,
            str(info.get("Code") or "Unknown"),
            int(status) if status is not None else 0,
            str(info.get("Message") or ""),
        )
    if isinstance(error, ParamValidationError):
        # Caught by botocore before sending: the request itself is malformed, like a 400.
        return AwsCallError(service, operation, "ParamValidationError", 400, "invalid request parameters")
    if isinstance(error, ConnectTimeoutError | ReadTimeoutError):
        return AwsCallError(service, operation, "Timeout", None, "no answer in time")
    if isinstance(error, EndpointConnectionError | ConnectionClosedError):
        return AwsCallError(service, operation, "NetworkError", None, "could not reach the endpoint")
    return AwsCallError(service, operation, type(error).__name__, None, "request failed")


def item_error(service: str, operation: str, code: str) -> AwsCallError:
    """One failed item of a batch answer: the call itself succeeded (HTTP 200), the item did not."""
    return AwsCallError(service, operation, code, 200, "", server_side=code in _SERVER_ITEM_CODES)


def to_provider_error(error: AwsCallError, what: str, region: str) -> ProviderError:
    """`what` names the object(s), e.g. 'secret "db/creds"'; never a value."""
    where = f"{what} in region {region}"
    if error.code in _NOT_FOUND:
        return NotFoundError(
            f"{where} was not found ({error.code}): check objectName, objectVersion and objectVersionLabel"
        )
    if error.code in _DENIED:
        hint = "the KMS key policy" if error.code.startswith(("KMS", "Decryption")) else "the IAM policy"
        return AccessDeniedError(
            f"access to {where} was denied ({error.code}): check {hint} of the pod's role"
        )
    if error.throttled:
        return ThrottledError(f"AWS throttled requests for {where} ({error.code}); retries were exhausted")
    if error.retriable:
        return UnavailableError(f"could not fetch {where}: {error.code} ({error.detail or 'no detail'})")
    if error.code in _INVALID:
        return ConfigError([f"AWS rejected the request for {where} ({error.code}): {error.detail}"])
    return PreconditionError(f"AWS refused the request for {where} ({error.code}): {error.detail}")


def sts_error(error: AwsCallError, who: str, region: str, token: SecretText) -> ProviderError:
    """A failed AssumeRoleWithWebIdentity for `who` (role and ServiceAccount); `token` is redacted."""
    if error.code == "ParamValidationError":
        return PreconditionError(
            f"STS cannot assume {who}: the {ROLE_ARN_ANNOTATION} annotation or the token is malformed"
        )
    if error.http_status is None:
        return UnavailableError(f"STS in {region} is unreachable while assuming {who} ({error.code})")
    detail = token.redact_in(error.detail)[:200]
    text = f"STS in {region} refused to assume {who}: {error.code}" + (f" ({detail})" if detail else "")
    if error.throttled:
        return ThrottledError(text)
    if error.retriable or error.code in _STS_TRANSIENT:
        return UnavailableError(text)
    return AccessDeniedError(text + "; check the role's trust policy for this ServiceAccount")
