"""`--min-instances`, `--max-instances`, `--idle-timeout`, `--idle-mode` and
`--target-concurrency` of `ltc create` and `ltc update`: checked, then the API's `autoscale`.

`ltc update` merges the flags given over the app's current block (or the defaults), and the
result is checked as a whole before anything is sent: `--min-instances 5` on an app whose
maximum is 3 is refused by ltc (exit 13), and nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lattice.client.errors import InvalidInput
from lattice.models.autoscale import (
    DEFAULT_IDLE_TIMEOUT_S,
    DEFAULT_TARGET_CONCURRENCY,
    IDLE_MODES,
    MAX_IDLE_TIMEOUT_S,
    MAX_TARGET_CONCURRENCY,
    Autoscale,
)
from lattice.models.desired import MAX_INSTANCES
from lattice.models.errors import Problems


@dataclass(frozen=True, kw_only=True)
class AutoscaleFlags:
    min_instances: int | None = None
    max_instances: int | None = None
    idle_timeout: str | None = None
    idle_mode: str | None = None
    target_concurrency: int | None = None

    def given(self) -> bool:
        return any(v is not None for v in (self.min_instances, self.max_instances,
                                           self.idle_timeout, self.idle_mode,
                                           self.target_concurrency))


def parse_autoscale_flags(flags: AutoscaleFlags, problems: Problems) -> dict[str, Any]:
    """The fields the flags set, each checked alone (the API's names)."""
    from lattice.client.app_spec import _duration  # app_spec imports this module

    fields: dict[str, Any] = {}
    if flags.min_instances is not None:
        if not 0 <= flags.min_instances <= MAX_INSTANCES:
            problems.add("min-instances",
                         f"must be between 0 and {MAX_INSTANCES}, got {flags.min_instances}")
        fields["min_instances"] = flags.min_instances
    if flags.max_instances is not None:
        if not 1 <= flags.max_instances <= MAX_INSTANCES:
            problems.add("max-instances",
                         f"must be between 1 and {MAX_INSTANCES}, got {flags.max_instances}")
        fields["max_instances"] = flags.max_instances
    if flags.idle_timeout is not None:
        seconds = _duration(flags.idle_timeout, problems, "idle-timeout")
        if seconds > MAX_IDLE_TIMEOUT_S:
            problems.add("idle-timeout", f"must be at most {MAX_IDLE_TIMEOUT_S:g} s")
        fields["idle_timeout_s"] = seconds
    if flags.idle_mode is not None:
        if flags.idle_mode not in IDLE_MODES:
            problems.add("idle-mode", f"must be one of {', '.join(IDLE_MODES)}, "
                                      f"got {flags.idle_mode!r}")
        fields["idle_mode"] = flags.idle_mode
    if flags.target_concurrency is not None:
        if not 1 <= flags.target_concurrency <= MAX_TARGET_CONCURRENCY:
            problems.add("target-concurrency",
                         f"must be between 1 and {MAX_TARGET_CONCURRENCY}, "
                         f"got {flags.target_concurrency}")
        fields["target_concurrency"] = flags.target_concurrency
    return fields


def merged_block(fields: dict[str, Any], current: Autoscale | None,
                 problems: Problems) -> dict[str, Any]:
    """`fields` over the current block (or the defaults: min 0, max 1 or min, 60 s, stop, 10),
    checked as a whole: min <= max."""
    base: dict[str, Any] = current.to_dict() if current is not None else {
        "min_instances": 0,
        "max_instances": max(1, int(fields.get("min_instances", 0))),
        "idle_timeout_s": DEFAULT_IDLE_TIMEOUT_S,
        "idle_mode": "stop",
        "target_concurrency": DEFAULT_TARGET_CONCURRENCY,
    }
    block = {**base, **fields}
    if block["min_instances"] > block["max_instances"]:
        problems.add("min-instances", f"{block['min_instances']} is more than --max-instances "
                                      f"({block['max_instances']})")
    return block


def check_instances_in_range(instances: int, block: dict[str, Any], problems: Problems) -> None:
    low, high = block["min_instances"], block["max_instances"]
    if not low <= instances <= high:
        problems.add("instances", f"{instances} is outside --min-instances {low} .. "
                                  f"--max-instances {high}")


def raise_if_any(problems: Problems) -> None:
    if problems.errors:
        raise InvalidInput(problems.errors)
