"""Functions from ltc's side: the /v1/functions calls and the request `ltc function create`
builds from its flags, checked with the model's own validation before anything is sent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import aiohttp

from lattice.client.app_spec import parse_duration, parse_env
from lattice.client.errors import InvalidInput, ProtocolError
from lattice.client.receptor import ReceptorClient
from lattice.client.session_transport import SessionTransport
from lattice.client.target import Target
from lattice.models import FieldError, ValidationError
from lattice.models.errors import Problems
from lattice.models.function import Function, parse_function

ROUTE_WAIT_S = 10.0
ROUTE_POLL_S = 0.05
# The API's field names, as ltc's flags spell them.
_FLAG_NAMES = {"memory_mb": "memory-mb", "cpu_weight": "cpu-weight", "timeout_s": "timeout"}


def _functions(data: Any, many: bool) -> Any:
    try:
        return ([Function.from_dict(item) for item in data] if many
                else Function.from_dict(data))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ProtocolError(f"the API's function answer is malformed ({exc!r}): "
                            f"{data!r:.200}") from exc


def function_request(*, name: str, image: str, command: Sequence[str], memory_mb: int,
                     cpu_weight: int, env: Sequence[str], concurrency: int, queue: int,
                     timeout: str) -> dict[str, Any]:
    """The create request; InvalidInput naming every bad flag (nothing is sent then)."""
    problems = Problems()
    variables = [parsed for item in env if (parsed := parse_env(item, problems)) is not None]
    timeout_s = 0
    try:
        seconds = parse_duration(timeout)
        timeout_s = max(1, round(seconds))
    except InvalidInput as exc:
        problems.errors.extend(exc.fields)
    request: dict[str, Any] = {
        "name": name, "image": image, "memory_mb": memory_mb, "cpu_weight": cpu_weight,
        "env": [{"name": k, "value": v} for k, v in variables], "concurrency": concurrency,
        "queue": queue, "timeout_s": timeout_s,
    }
    if command:
        request["command"] = list(command)
    try:
        parse_function(request, 0)
    except ValidationError as exc:
        problems.errors.extend(
            FieldError(_FLAG_NAMES.get(e.field, e.field), e.message) for e in exc.errors
            if not (e.field == "timeout_s" and not timeout_s)
        )
    if problems.errors:
        raise InvalidInput(problems.errors)
    return request


class FunctionClient(ReceptorClient):
    async def create_function(self, request: dict[str, Any]) -> Function:
        created: Function = _functions(await self._call("POST", "/v1/functions", body=request),
                                       many=False)
        return created

    async def functions(self) -> list[Function]:
        found: list[Function] = _functions(await self._call("GET", "/v1/functions"), many=True)
        return found

    async def remove_function(self, name: str) -> None:
        await self._call("DELETE", f"/v1/functions/{name}")


def function_client(session: aiohttp.ClientSession, target: Target) -> FunctionClient:
    return FunctionClient(SessionTransport(session), target.receptor_url)


async def wait_routed(session: aiohttp.ClientSession, url: str,
                      timeout_s: float = ROUTE_WAIT_S) -> bool:
    """Whether the function's route answers within `timeout_s`: a GET reaches a brain (405,
    nothing runs) instead of the router's 404. The route appears once a brain has rewritten
    its service record and the router has seen it, a few milliseconds after the create."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
                if response.status == 405:
                    return True
        except (aiohttp.ClientError, OSError, TimeoutError):
            pass
        await asyncio.sleep(ROUTE_POLL_S)
    return False
