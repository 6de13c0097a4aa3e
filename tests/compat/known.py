"""The differences from the real Go provider that `make compat` has shown, each with its reason.

Every difference line a case shows must be matched by an entry here whose `applies` takes the case and whose
`shows` pattern matches the line; otherwise the case fails. An entry that no case needed any more fails the
run too (the table would claim a difference that is gone). The README's table is rendered from this list and
the run's results (`make readme-figures`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["KNOWN", "Known"]


@dataclass(frozen=True)
class Known:
    key: str
    go: str  # what the Go provider does
    ours: str  # what this provider does
    why: str  # why it stays so (or what was fixed)
    applies: Callable[[str, frozenset[str]], bool]  # (case id, case tags) -> whether this row can apply
    shows: str  # a regular expression over the difference lines it explains

    def explains(self, case_id: str, tags: frozenset[str], line: str) -> bool:
        return self.applies(case_id, tags) and re.search(self.shows, line) is not None


def _tagged(*tags: str) -> Callable[[str, frozenset[str]], bool]:
    return lambda _case, case_tags: all(tag in case_tags for tag in tags)


KNOWN: tuple[Known, ...] = (
    Known(
        "failover asks both regions",
        "asks the failover region for every object on every Mount, even when the primary answered it; an "
        "object missing there (SSM `InvalidParameters`), or a 4xx its SDK models for the operation "
        "(`InvalidKeyId`, `ResourceNotFoundException`, `InvalidRequestException`), fails the Mount",
        "asks the failover region only for the objects the primary did not serve (5xx, network, a throttle "
        "left after the retries, a denial): the Mount succeeds from the primary",
        "a failover region is there for when the primary fails; with objects not replicated (or a key not "
        "shared) the Go provider fails Mounts a healthy primary could serve. Its own tests "
        "`Multi Region Param Fallback Invalid Fail`, `Multi Region Param Fallback 4XX Fail` and "
        "`Multi Region Secrets Fallback 4XX Fail` state that failure; `Multi Region Success` expects a "
        "success its binary does not give (the parameter is not in the failover region)",
        _tagged("failover"),
        r"outcome: ours success, Go failure",
    ),
    Known(
        "failover region's version",
        "when both regions answer a secret, reports the failover region's `VersionId` (each region asked "
        "overwrites the version) while the file holds the primary's value; its next poll then finds that "
        "version not current in the primary and fetches the secret again",
        "reports the version of the value it mounted (the primary's)",
        "the version names the mounted value; with Go's, every poll of a failover SecretProviderClass "
        "re-reads every secret",
        _tagged("failover"),
        r"object versions differ",
    ),
    Known(
        "poll during a primary outage",
        "checks the version it reported (the failover region's) in the failover region, finds it current "
        "and reads the file back from the pod's volume: the pod keeps the primary's value",
        "the version check fails in the primary, so the secret is fetched from the failover region and its "
        "value mounted",
        "no host mount of pod volumes here (nothing is read back); with replicated secrets both regions hold "
        "the same value, so only an unreplicated one (as in this case) shows the difference",
        _tagged("rotation", "failover"),
        r"contents differ",
    ),
    Known(
        "root-level SSM names: Go crashes",
        "SSM takes `/name` and `name` at the root for one parameter and answers under the name it was "
        "created with; the Go provider looks that name up among the names it asked for, finds nothing and "
        "uses the empty entry: its process dies (nil pointer dereference, `parameter_store_provider.go:167`) "
        "and every Mount of the node fails until the DaemonSet restarts it",
        "matched as SSM matches names: the parameter is mounted",
        "a parameter asked as `/name` that was created as `name` (or the other way round) is the same "
        "parameter to SSM",
        _tagged("ssm-root"),
        r"Go failure \(its process crashed\)",
    ),
    Known(
        "Pod Identity IPv6 fallback",
        "with `preferredAddressType` `auto` or unset and the agent failing on IPv4, the Mount fails: its SDK "
        "asks the agent for credentials only at the first AWS request, after the IPv4 address was chosen, "
        "so the IPv6 address is never tried",
        "IPv4, then IPv6 when IPv4 fails (as the parameter is documented, and as its own unit tests expect)",
        "`auto` means try both addresses",
        lambda _case, tags: "pod-identity" in tags and "down:ipv4" in tags and not tags & {"preference:ipv4"},
        r"outcome: ours success, Go failure",
    ),
)
