"""Autoscaling of an app (issue 7, scale to zero): the optional block of its scheduling info.

    min_instances        the count an idle app goes down to (0: scale to zero)
    max_instances        the most instances load may ask for
    idle_timeout_s       no request for this long: the app is idle
    idle_mode            "stop": idle instances are removed; "pause": the last instance is
                         frozen (docker pause) instead of removed, and thawed by a request
    target_concurrency   requests in flight per instance above which the app scales up

`SchedulingInfo.instances` stays the count the converger enforces; the brain's autoscaler moves
it between min and max. Records written before autoscaling existed have no block (None).
"""

from __future__ import annotations

import enum
import math
from dataclasses import asdict, dataclass
from typing import Any

from lattice.models.errors import Problems

MAX_IDLE_TIMEOUT_S = 7 * 24 * 3600.0
MAX_TARGET_CONCURRENCY = 10_000
DEFAULT_IDLE_TIMEOUT_S = 60.0
DEFAULT_TARGET_CONCURRENCY = 10


class IdleMode(enum.StrEnum):
    STOP = "stop"
    PAUSE = "pause"


IDLE_MODES = tuple(str(mode) for mode in IdleMode)


@dataclass(frozen=True)
class Autoscale:
    min_instances: int = 0
    max_instances: int = 1
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S
    idle_mode: IdleMode = IdleMode.STOP
    target_concurrency: int = DEFAULT_TARGET_CONCURRENCY

    @property
    def idle_count(self) -> int:
        """Instances an idle app keeps: min, but one frozen one in pause mode."""
        if self.idle_mode is IdleMode.PAUSE:
            return max(self.min_instances, 1)
        return self.min_instances

    def initial_instances(self) -> int:
        """An app created with autoscaling starts with one instance (at least min), so that
        `ltc create` proves the image runs; it goes down to min once idle."""
        return min(max(self.min_instances, 1), self.max_instances)

    def clamp(self, instances: int) -> int:
        return min(max(instances, self.min_instances), self.max_instances)

    def needed_for(self, in_flight: int) -> int:
        """Instances that `in_flight` concurrent requests ask for, within min..max."""
        return self.clamp(math.ceil(in_flight / self.target_concurrency))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["idle_mode"] = str(self.idle_mode)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Autoscale:
        return cls(
            min_instances=int(data.get("min_instances", 0)),
            max_instances=int(data.get("max_instances", 1)),
            idle_timeout_s=float(data.get("idle_timeout_s", DEFAULT_IDLE_TIMEOUT_S)),
            idle_mode=IdleMode(data.get("idle_mode", "stop")),
            target_concurrency=int(data.get("target_concurrency", DEFAULT_TARGET_CONCURRENCY)),
        )


def stored_autoscale(raw: Any) -> Autoscale | None:
    """The block as stored; absent (an older record) or null means no autoscaling."""
    return Autoscale.from_dict(raw) if isinstance(raw, dict) else None


def _integer(problems: Problems, name: str, value: Any, minimum: int, maximum: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        problems.add(name, f"must be an integer, got {value!r}")
        return None
    if not minimum <= value <= maximum:
        problems.add(name, f"must be between {minimum} and {maximum}, got {value}")
        return None
    return value


FIELDS = ("min_instances", "max_instances", "idle_timeout_s", "idle_mode", "target_concurrency")


def parse_autoscale(problems: Problems, raw: Any, max_instances: int) -> Autoscale | None:
    """The API's `autoscale` object; every bad field is named as `autoscale.<field>`.

    Absent fields take the defaults (min 0, max 1, 60 s, stop, 10); null means none.
    """
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.add("autoscale", f"must be an object with {', '.join(FIELDS)}")
        return None
    before = len(problems.errors)
    for name in sorted(set(raw) - set(FIELDS)):
        problems.add(f"autoscale.{name}", f"is not an autoscale field ({', '.join(FIELDS)})")
    default = Autoscale()
    low = _integer(problems, "autoscale.min_instances", raw.get("min_instances", 0), 0,
                   max_instances)
    high = _integer(problems, "autoscale.max_instances",
                    raw.get("max_instances", max(default.max_instances, low or 0)), 1,
                    max_instances)
    if low is not None and high is not None and low > high:
        problems.add("autoscale.min_instances",
                     f"must be at most max_instances ({high}), got {low}")
    timeout = raw.get("idle_timeout_s", DEFAULT_IDLE_TIMEOUT_S)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not (
        0 < timeout <= MAX_IDLE_TIMEOUT_S  # written so that NaN is refused too
    ):
        problems.add("autoscale.idle_timeout_s",
                     f"must be a number of seconds more than 0 and at most "
                     f"{MAX_IDLE_TIMEOUT_S:g}, got {timeout!r}")
    mode = raw.get("idle_mode", "stop")
    if mode not in IDLE_MODES:
        problems.add("autoscale.idle_mode", f"must be one of {', '.join(IDLE_MODES)}, "
                                            f"got {mode!r}")
    target = _integer(problems, "autoscale.target_concurrency",
                      raw.get("target_concurrency", DEFAULT_TARGET_CONCURRENCY), 1,
                      MAX_TARGET_CONCURRENCY)
    if len(problems.errors) > before or low is None or high is None or target is None:
        return None
    return Autoscale(low, high, float(timeout), IdleMode(mode), target)


@dataclass(frozen=True)
class Activity:
    """What one router saw of one app: the last request's arrival and requests in flight now
    (held ones included). The brain sums in flight and takes the latest request over routers."""

    last_request_ns: int = 0
    in_flight: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Activity:
        return cls(int(data.get("last_request_ns", 0)), int(data.get("in_flight", 0)))


RECENT_COLD_STARTS = 50


@dataclass(frozen=True)
class ColdStarts:
    """The waits of requests that found an app with no routable instance (first request to
    first byte of the answer's head, measured by the router), per kind: `start` (a container
    was started) and `wake` (a paused one was thawed)."""

    count: int = 0
    wakes: int = 0
    last_ms: float = 0.0
    last_kind: str = ""
    recent_ms: tuple[float, ...] = ()    # the last RECENT_COLD_STARTS, oldest first
    recent_wake_ms: tuple[float, ...] = ()

    def recorded(self, kind: str, ms: float) -> ColdStarts:
        if kind == "wake":
            return ColdStarts(self.count, self.wakes + 1, ms, kind, self.recent_ms,
                              (*self.recent_wake_ms, ms)[-RECENT_COLD_STARTS:])
        return ColdStarts(self.count + 1, self.wakes, ms, kind,
                          (*self.recent_ms, ms)[-RECENT_COLD_STARTS:], self.recent_wake_ms)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["recent_ms"] = list(self.recent_ms)
        data["recent_wake_ms"] = list(self.recent_wake_ms)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColdStarts:
        return cls(
            count=int(data.get("count", 0)),
            wakes=int(data.get("wakes", 0)),
            last_ms=float(data.get("last_ms", 0.0)),
            last_kind=str(data.get("last_kind", "")),
            recent_ms=tuple(float(v) for v in data.get("recent_ms", ())),
            recent_wake_ms=tuple(float(v) for v in data.get("recent_wake_ms", ())),
        )


def percentile(values: tuple[float, ...], fraction: float) -> float:
    """The nearest-rank percentile; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]
