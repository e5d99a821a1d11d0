"""A typed client for the brain's receptor-like API (docs/architecture.md, "The API").

Every failure comes out as one of `lattice.client.errors` (drawn there):

    ClientError
    ├── BadTarget       cannot connect, no answer in time, or the router knows no receptor
    ├── ProtocolError   an answer outside the contract
    └── ApiError        the API's own error answer: status, type, message, fields
        ├── InvalidRequest      400
        ├── AppNotFound         404
        └── AppAlreadyExists    409
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from lattice.client.api_transport import HttpTransport, Reply, Transport
from lattice.client.errors import ApiError, BadTarget, ProtocolError
from lattice.models import DesiredLRP, Route, RunInfo, SchedulingInfo

if TYPE_CHECKING:
    from lattice.client.box_info import CellState, Info
    from lattice.models.actual import ActualLRP
    from lattice.models.metrics import InstanceMetrics

T = TypeVar("T")


def desired_lrp_from_dict(data: Mapping[str, Any]) -> DesiredLRP:
    """The API shows scheduling and run info merged in one object; split it again."""
    merged = dict(data)
    return DesiredLRP(SchedulingInfo.from_dict(merged), RunInfo.from_dict(merged))


def _route_to_dict(route: Route) -> dict[str, Any]:
    return {"hostnames": list(route.hostnames), "port": route.port}


class ReceptorClient:
    """One method per API call. The transport decides how names resolve (api_transport.py)."""

    def __init__(self, transport: Transport, base_url: str) -> None:
        self._transport = transport
        self._base_url = base_url.rstrip("/")

    @property
    def base_url(self) -> str:
        return self._base_url

    async def info(self) -> Info:
        from lattice.client.box_info import Info  # here: `ltc create` does without it

        data = await self._call("GET", "/v1/info")
        return _parse(lambda: Info(version=str(data["version"]), domain=str(data["domain"])),
                      "info", data)

    async def create_desired_lrp(self, request: Mapping[str, Any]) -> DesiredLRP:
        return _desired_lrp(await self._call("POST", "/v1/desired_lrps", body=request))

    async def desired_lrps(self) -> list[DesiredLRP]:
        data = await self._call("GET", "/v1/desired_lrps")
        return _parse(lambda: [desired_lrp_from_dict(item) for item in data],
                      "desired LRP list", data)

    async def desired_lrp(self, process_guid: str) -> DesiredLRP:
        return _desired_lrp(await self._call("GET", f"/v1/desired_lrps/{process_guid}"))

    async def update_desired_lrp(
        self,
        process_guid: str,
        *,
        instances: int | None = None,
        routes: Sequence[Route] | None = None,
        annotation: str | None = None,
    ) -> None:
        body: dict[str, Any] = {}
        if instances is not None:
            body["instances"] = instances
        if routes is not None:
            body["routes"] = [_route_to_dict(r) for r in routes]
        if annotation is not None:
            body["annotation"] = annotation
        await self._call("PUT", f"/v1/desired_lrps/{process_guid}", body=body)

    async def put_desired_lrp(self, process_guid: str, body: Mapping[str, Any]) -> None:
        """`PUT /v1/desired_lrps/{guid}` with a body built by the caller (ltc update)."""
        await self._call("PUT", f"/v1/desired_lrps/{process_guid}", body=dict(body))

    async def delete_desired_lrp(self, process_guid: str) -> None:
        await self._call("DELETE", f"/v1/desired_lrps/{process_guid}")

    async def actual_lrps(self, process_guid: str | None = None) -> list[ActualLRP]:
        path = "/v1/actual_lrps" if process_guid is None else f"/v1/actual_lrps/{process_guid}"
        return _actual_lrps(await self._call("GET", path))

    async def actual_lrps_with_metrics(
        self, process_guid: str
    ) -> list[tuple[ActualLRP, InstanceMetrics | None]]:
        """The app's instances, each with its cell's last container sample (None: none yet)."""
        # Here, not at the top: only `ltc status` and `ltc visualize` read samples.
        from lattice.models.metrics import InstanceMetrics

        data = await self._call("GET", f"/v1/actual_lrps/{process_guid}")

        def build() -> list[tuple[ActualLRP, InstanceMetrics | None]]:
            from lattice.models.actual import ActualLRP

            return [
                (ActualLRP.from_dict(item),
                 None if item.get("metrics") is None
                 else InstanceMetrics.from_dict(item["metrics"]))
                for item in data
            ]

        return _parse(build, "actual LRP list", data)

    async def scaling(self, process_guid: str) -> dict[str, Any]:
        """Scale to zero: the app's idle/paused state, activity and cold starts (raw JSON)."""
        data = await self._call("GET", f"/v1/desired_lrps/{process_guid}/scaling")
        if not isinstance(data, dict):
            raise ProtocolError(f"the API's scaling answer is not an object: {data!r}")
        return data

    async def cells(self) -> list[CellState]:
        from lattice.client.box_info import CellState, CellUsage  # here: as info()
        from lattice.models.cell import CellPresence

        data = await self._call("GET", "/v1/cells")

        def build() -> list[CellState]:
            return [
                CellState(
                    presence=CellPresence.from_dict(item),
                    used=CellUsage(**item["used"]),
                    instances_by_app={str(k): int(v) for k, v in item["instances_by_app"].items()},
                )
                for item in data
            ]

        return _parse(build, "cell list", data)

    # -- transport ----------------------------------------------------------------------------

    async def _call(self, method: str, path: str, *, body: Any = None) -> Any:
        """Send one request; the decoded JSON answer (None for an empty one) or an error."""
        with reaching(self._base_url, method, path):
            reply = await self._transport.request(method, self._base_url + path, body)
        return answer(self._base_url, method, path, reply)


class BlockingReceptorClient:
    """The calls `ltc create` makes, without an event loop (ltc.py says why): the same
    requests, answers and errors as ReceptorClient's."""

    def __init__(self, transport: HttpTransport, base_url: str) -> None:
        self._transport = transport
        self._base_url = base_url.rstrip("/")

    @property
    def base_url(self) -> str:
        return self._base_url

    def create_desired_lrp(self, request: Mapping[str, Any]) -> DesiredLRP:
        return _desired_lrp(self._call("POST", "/v1/desired_lrps", body=request))

    def actual_lrps(self, process_guid: str) -> list[ActualLRP]:
        return _actual_lrps(self._call("GET", f"/v1/actual_lrps/{process_guid}"))

    def _call(self, method: str, path: str, *, body: Any = None) -> Any:
        with reaching(self._base_url, method, path):
            reply = self._transport.request_blocking(method, self._base_url + path, body)
        return answer(self._base_url, method, path, reply)


def _desired_lrp(data: Any) -> DesiredLRP:
    return _parse(lambda: desired_lrp_from_dict(data), "desired LRP", data)


def _actual_lrps(data: Any) -> list[ActualLRP]:
    # Here, not at the top: `ltc create` reads instances only once its request is sent.
    from lattice.models.actual import ActualLRP

    return _parse(lambda: [ActualLRP.from_dict(item) for item in data], "actual LRP list", data)


@contextlib.contextmanager
def reaching(base_url: str, method: str, path: str) -> Iterator[None]:
    """A transport's failure to get an answer -> BadTarget, saying which."""
    try:
        yield
    except TimeoutError as exc:  # before OSError, of which it is a subclass
        raise BadTarget(f"{base_url} did not answer {method} {path} in time") from exc
    except OSError as exc:
        raise BadTarget(f"cannot reach {base_url}: {_describe(exc)}") from exc


def answer(base_url: str, method: str, path: str, reply: Reply) -> Any:
    """The decoded JSON of an answer (None for an empty one), or the error it stands for."""
    if reply.router_error:
        raise BadTarget(
            f"the router answered {reply.status} ({reply.router_error}) for {base_url}: "
            "is the box's API running?"
        )
    decoded = _decode(reply.text, reply.status, method, path)
    if reply.status >= 400:
        raise ApiError.from_body(reply.status, decoded)
    return decoded


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _decode(text: str, status: int, method: str, path: str) -> Any:
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        snippet = text.strip().splitlines()[0][:120]
        if status == 404:
            # Something answers HTTP at the target, but it is no lattice API.
            raise BadTarget(f"{method} {path} answered 404 with {snippet!r}: not a lattice")\
                from exc
        raise ProtocolError(f"{method} {path} answered {status} with non-JSON {snippet!r}")\
            from exc


def _parse(build: Callable[[], T], what: str, data: Any) -> T:
    """Run `build` on a decoded answer; a missing or mistyped field is a ProtocolError."""
    try:
        return build()
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ProtocolError(f"the API's {what} is malformed ({exc!r}): {data!r:.200}") from exc
