"""Reading the provider's HTTP endpoint in tests: GET a page, parse a /metrics page into samples."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

__all__ = ["HTTP_TIMEOUT", "Page", "Samples", "get", "get_page", "parse_metrics", "value"]

HTTP_TIMEOUT = aiohttp.ClientTimeout(total=10)

# (sample name, labels) -> value
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
# (status, Content-Type, body)
Page = tuple[int, str, str]


async def get_page(url: str) -> Page:
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session, session.get(url) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


async def get(url: str) -> tuple[int, str]:
    status, _, text = await get_page(url)
    return status, text


def parse_metrics(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the sample is absent (a counter never incremented)."""
    return samples.get((name, frozenset(labels.items())), 0.0)
