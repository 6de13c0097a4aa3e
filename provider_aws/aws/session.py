"""The botocore session every AWS client of the provider comes from, set up once.

Two settings through botocore's supported seams, each measured (issue 13):
- its data loader keeps botocore's models reduced to the operations we call (`models`);
- a fixed User-Agent (the default client config's `user_agent`): botocore otherwise rebuilds the
  header for every request from some 30 sanitised components, a character at a time, about a
  sixth of the CPU of a DescribeSecret. The fixed header names the provider, as the Go provider's
  does, with the Python and OS versions (botocore adds its own).
"""

from __future__ import annotations

import platform
from typing import Any

from aiobotocore.config import AioConfig

from provider_aws import DISTRIBUTION, __version__
from provider_aws.aws.servicemodels import PREPARED_DATA, use_reduced_models

__all__ = ["USER_AGENT", "set_up_session"]

# botocore appends its own name and version.
USER_AGENT = f"{DISTRIBUTION}/{__version__} Python/{platform.python_version()} {platform.system()}"


def set_up_session(session: Any) -> None:
    """Reduced models and the fixed User-Agent for every client `session` makes."""
    use_reduced_models(session, PREPARED_DATA)
    session.set_default_client_config(AioConfig(user_agent=USER_AGENT))
