"""A MODEL of the Go provider at fleet scale: its request pattern, sent through the same quota
proxy and fake Kubernetes API, so its throttles and latencies are measured the same way.

The real Go provider cannot be built here (the Go module proxy refuses it), so this client sends
what aws/secrets-store-csi-driver-provider-aws sends, as read in its source (server/server.go,
provider/secrets_manager_provider.go, provider/parameter_store_provider.go,
credential_provider/irsa_credential_provider.go), per Mount:

* per region: the ServiceAccount GET (its role annotation), through one Kubernetes client per
  node limited to 5 QPS with a burst of 10 (client-go's defaults), waiting for a token;
* per region: one STS AssumeRoleWithWebIdentity, made when that region's first request is signed;
* Secrets Manager: one secret after another, each in *every* region (the loop over the region
  clients has no break), GetSecretValue, or on a poll DescribeSecret and GetSecretValue only
  when the mounted version lost its label; a 4xx is fatal, anything else tries the next region;
* SSM: GetParameters per 10 parameters, in every region;
* aws-sdk-go v1's default retryer: 3 retries of throttles, 5xx and network errors, waiting
  2^n x [30, 60) ms, or 2^n x [500, 1000) ms after a throttle.

Mounts run concurrently (one goroutine per RPC); each Mount's requests are sequential.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from fleet.ours import Outcome, Versions
from fleet.scenarios import FAILOVER, NAMESPACE, PRIMARY, Pod, Scenario
from fleet.world import ROLE, World
from provider_aws.aws.errors import THROTTLING_CODES
from testkit.identity import jwt

__all__ = ["GoDriver"]

RETRIES = 3
KUBE_QPS, KUBE_BURST = 5.0, 10.0


class _Limiter:
    """client-go's token bucket: waits for a token."""

    def __init__(self, rate: float, burst: float) -> None:
        self._rate, self._burst = rate, burst
        self._tokens, self._at = burst, time.monotonic()
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            now = time.monotonic()
            self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
            self._at = now
            if self._tokens < 1.0:
                await asyncio.sleep((1.0 - self._tokens) / self._rate)
                self._tokens, self._at = 1.0, time.monotonic()
            self._tokens -= 1.0


@dataclass(frozen=True)
class _Answer:
    status: int
    code: str
    body: dict[str, Any]


class _Fatal(Exception):
    pass


def _code(status: int, text: str) -> str:
    if status < 400:
        return ""
    if "<Code>" in text:
        return text.split("<Code>", 1)[1].split("</Code>", 1)[0]
    try:
        return str(json.loads(text).get("__type", "Unknown")).rsplit("#", 1)[-1]
    except ValueError:
        return "Unknown"


class GoDriver:
    label = "Go provider (request-pattern model)"

    def __init__(self, world: World, scenario: Scenario, nodes: int) -> None:
        self._world = world
        self._scenario = scenario
        self._limiters = [_Limiter(KUBE_QPS * scenario.compression, KUBE_BURST) for _ in range(nodes)]
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
        self._rng = random.Random(15)

    async def close(self) -> None:
        await self._session.close()

    async def _send(self, headers: dict[str, str], data: str) -> _Answer:
        for attempt in range(RETRIES + 1):
            try:
                async with self._session.post(
                    self._world.proxy.url + "/", data=data, headers=headers
                ) as reply:
                    status, text = reply.status, await reply.text()
            except aiohttp.ClientError:
                status, text = 0, ""
            code = _code(status, text) if status else "NetworkError"
            if status and status < 400:
                return _Answer(status, "", json.loads(text) if text.startswith("{") else {})
            retriable = not status or status >= 500 or code in THROTTLING_CODES
            if not retriable or attempt == RETRIES:
                return _Answer(status, code, {})
            least = 0.5 if code in THROTTLING_CODES else 0.03
            await asyncio.sleep(2**attempt * (least + self._rng.random() * least))
        raise AssertionError("unreachable")

    async def _json(self, service: str, target: str, region: str, body: dict[str, Any]) -> _Answer:
        scope = f"ASIAGOMODEL/20260101/{region}/{service}/aws4_request"
        headers = {
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": target,
            "Authorization": f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host, Signature={'0' * 64}",
        }
        return await self._send(headers, json.dumps(body))

    async def _assume(self, pod: Pod) -> _Answer:
        form = {
            "Action": "AssumeRoleWithWebIdentity",
            "Version": "2011-06-15",
            "RoleArn": ROLE,
            "RoleSessionName": "secrets-store-csi-driver-provider-aws",
            "WebIdentityToken": jwt(NAMESPACE, pod.service_account, pod.name),
        }
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return await self._send(headers, "&".join(f"{k}={v}" for k, v in form.items()))

    async def _service_account(self, pod: Pod) -> None:
        await self._limiters[pod.node].wait()
        url = f"{self._world.kube.url}/api/v1/namespaces/{NAMESPACE}/serviceaccounts/{pod.service_account}"
        async with self._session.get(url, headers={"Authorization": "Bearer go-model"}) as reply:
            if reply.status >= 400:
                raise _Fatal(f"ServiceAccount GET {reply.status}")
            await reply.read()

    async def mount(self, pod: Pod, current: Versions) -> Outcome:
        start = time.perf_counter()
        try:
            versions = await self._mount(pod, dict(current))
        except _Fatal as error:
            return time.perf_counter() - start, f"UNKNOWN ({error})", current
        return time.perf_counter() - start, "OK", tuple(sorted(versions.items()))

    async def _mount(self, pod: Pod, mounted: dict[str, str]) -> dict[str, str]:
        regions = (PRIMARY, FAILOVER) if self._scenario.outage else (PRIMARY,)
        for _ in regions:
            await self._service_account(pod)
        signed: dict[str, bool] = {}

        async def credentials(region: str) -> bool:
            if region not in signed:
                signed[region] = (await self._assume(pod)).status == 200
            return signed[region]

        versions: dict[str, str] = {}
        for name in pod.secrets:
            for region in regions:
                if not await credentials(region):
                    continue
                version = await self._secret(name, region, mounted.get(name))
                if version is not None and name not in versions:
                    versions[name] = version
            if name not in versions:
                raise _Fatal("Failed to fetch secret from all regions")
        for start in range(0, len(pod.parameters), 10):
            names = list(pod.parameters[start : start + 10])
            for region in regions:
                if not await credentials(region):
                    continue
                answer = await self._json(
                    "ssm", "AmazonSSM.GetParameters", region, {"Names": names, "WithDecryption": True}
                )
                self._fatal(answer)
                for item in answer.body.get("Parameters") or []:
                    versions.setdefault(str(item["Name"]), str(item["Version"]))
            if any(name not in versions for name in names):
                raise _Fatal("Failed to fetch parameters from all regions")
        return versions

    @staticmethod
    def _fatal(answer: _Answer) -> None:
        # utils.IsFatalError: any HTTP 4xx, a throttle left after the retries included.
        if 400 <= answer.status < 500:
            raise _Fatal(f"{answer.code} {answer.status}")

    async def _secret(self, name: str, region: str, mounted: str | None) -> str | None:
        """The version served from `region`, or None after a non-fatal failure there."""
        if mounted is not None:
            described = await self._json(
                "secretsmanager", "secretsmanager.DescribeSecret", region, {"SecretId": name}
            )
            self._fatal(described)
            if described.status != 200:
                return None
            stages = described.body.get("VersionIdsToStages") or {}
            if "AWSCURRENT" in (stages.get(mounted) or ()):
                return mounted  # read back from the pod's volume: no request
        answer = await self._json(
            "secretsmanager", "secretsmanager.GetSecretValue", region, {"SecretId": name}
        )
        self._fatal(answer)
        return str(answer.body["VersionId"]) if answer.status == 200 else None
