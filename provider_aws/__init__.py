"""AWS provider for the Kubernetes Secrets Store CSI driver."""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version

__all__ = ["DISTRIBUTION", "__version__", "semver"]

DISTRIBUTION = "secrets-store-csi-provider-aws"

try:
    __version__ = version(DISTRIBUTION)
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0-dev"

_PEP440 = re.compile(
    r"(?P<release>\d+\.\d+\.\d+)"
    r"(?:(?P<pre>a|b|rc)(?P<pre_n>\d+))?"
    r"(?:\.post(?P<post>\d+))?"
    r"(?:\.dev(?P<dev>\d+))?"
    r"(?:\+(?P<local>[0-9A-Za-z.]+))?"
)
_PRE_NAMES = {"a": "alpha", "b": "beta", "rc": "rc"}


def semver(version: str) -> str:
    """A PEP 440 version in the semver form the driver requires (`0.2.0.dev3` -> `0.2.0-dev.3`)."""
    match = _PEP440.fullmatch(version)
    if match is None:
        return version
    pre = []
    if match["pre"]:
        pre.append(f"{_PRE_NAMES[match['pre']]}.{match['pre_n']}")
    if match["dev"]:
        pre.append(f"dev.{match['dev']}")
    build = []
    if match["post"]:
        build.append(f"post.{match['post']}")
    if match["local"]:
        build.append(match["local"])
    text = match["release"]
    if pre:
        text += "-" + ".".join(pre)
    if build:
        text += "+" + ".".join(build)
    return text
