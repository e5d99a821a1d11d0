"""Function: a container image run as a one-off task per HTTP request. Pure: no I/O here.

`ltc function create NAME IMAGE -- COMMAND` stores one Function; `POST http://NAME.<domain>/`
then runs COMMAND in a new container of IMAGE with the request body on its stdin and answers
with its stdout. The name is the function's route, so it must be a DNS label.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lattice.models.desired import parse_env
from lattice.models.errors import Problems

# A DNS label in lower case: the function's route is NAME.<domain>.
FUNCTION_NAME_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")

DEFAULT_MEMORY_MB = 128
DEFAULT_CPU_WEIGHT = 100
DEFAULT_CONCURRENCY = 10      # tasks of one function running at once (per brain)
MAX_CONCURRENCY = 1000
DEFAULT_QUEUE = 100           # requests waiting for a slot beyond those (per brain)
MAX_QUEUE = 10_000
DEFAULT_TIMEOUT_S = 30        # a run longer than this is killed (504)
MAX_TIMEOUT_S = 3600

# etcd refuses requests over 1.5 MiB: a body and an output each travel in their own key, so
# 1 MiB of either leaves room for the rest of the transaction.
MAX_STDIN_BYTES = 1024 * 1024
MAX_STDOUT_BYTES = 1024 * 1024
STDERR_TAIL_LINES = 20        # the last lines of stderr shown with a failure
STDERR_TAIL_BYTES = 4096


@dataclass(frozen=True)
class Function:
    name: str
    image: str
    command: tuple[str, ...] = ()          # empty: the image's own CMD
    env: tuple[tuple[str, str], ...] = ()
    memory_mb: int = DEFAULT_MEMORY_MB
    cpu_weight: int = DEFAULT_CPU_WEIGHT
    concurrency: int = DEFAULT_CONCURRENCY
    queue: int = DEFAULT_QUEUE
    timeout_s: int = DEFAULT_TIMEOUT_S
    created_at: int = 0                    # ns since the epoch; tells a re-created function apart

    def hostname(self, domain: str) -> str:
        return f"{self.name}.{domain}".lower()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "image": self.image,
            "command": list(self.command),
            "env": [{"name": k, "value": v} for k, v in self.env],
            "memory_mb": self.memory_mb,
            "cpu_weight": self.cpu_weight,
            "concurrency": self.concurrency,
            "queue": self.queue,
            "timeout_s": self.timeout_s,
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Function:
        return cls(
            name=data["name"],
            image=data["image"],
            command=tuple(data.get("command", ())),
            env=tuple((e["name"], e["value"]) for e in data.get("env", ())),
            memory_mb=int(data.get("memory_mb", DEFAULT_MEMORY_MB)),
            cpu_weight=int(data.get("cpu_weight", DEFAULT_CPU_WEIGHT)),
            concurrency=int(data.get("concurrency", DEFAULT_CONCURRENCY)),
            queue=int(data.get("queue", DEFAULT_QUEUE)),
            timeout_s=int(data.get("timeout_s", DEFAULT_TIMEOUT_S)),
            created_at=int(data.get("created_at", 0)),
        )


_KNOWN_FIELDS = frozenset(
    {"name", "image", "command", "env", "memory_mb", "cpu_weight", "concurrency", "queue",
     "timeout_s"}
)


def _int(problems: Problems, data: dict[str, Any], name: str, default: int, low: int,
         high: int) -> int:
    value = data.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        problems.add(name, f"must be an integer, got {value!r}")
        return default
    if not low <= value <= high:
        problems.add(name, f"must be between {low} and {high}, got {value}")
    return value


def check_function_name(problems: Problems, value: Any) -> str:
    if not isinstance(value, str) or not value:
        problems.add("name", "is required")
        return ""
    if not FUNCTION_NAME_PATTERN.match(value):
        problems.add("name", f"{value!r} must be a DNS label: 1-63 lower-case letters, digits "
                             "and '-', not starting or ending with '-'")
    return value


def parse_function(data: Any, now_ns: int) -> Function:
    """A Function from a submitted JSON object; ValidationError listing every bad field."""
    problems = Problems()
    if not isinstance(data, dict):
        problems.add("body", "must be a JSON object")
        problems.raise_if_any()
        raise AssertionError("unreachable")
    for name in sorted(set(data) - _KNOWN_FIELDS):
        problems.add(name, "is not a function field")
    name = check_function_name(problems, data.get("name"))
    image = data.get("image")
    if not isinstance(image, str) or not image.strip():
        problems.add("image", "is required")
        image = ""
    command: tuple[str, ...] = ()
    raw_command = data.get("command")
    if raw_command is not None:
        if not isinstance(raw_command, list) or not all(isinstance(c, str) for c in raw_command):
            problems.add("command", "must be a list of strings")
        else:
            command = tuple(raw_command)
    env = parse_env(problems, data.get("env"))
    memory_mb = _int(problems, data, "memory_mb", DEFAULT_MEMORY_MB, 0, 1 << 20)
    cpu_weight = _int(problems, data, "cpu_weight", DEFAULT_CPU_WEIGHT, 1, 100)
    concurrency = _int(problems, data, "concurrency", DEFAULT_CONCURRENCY, 1, MAX_CONCURRENCY)
    queue = _int(problems, data, "queue", DEFAULT_QUEUE, 0, MAX_QUEUE)
    timeout_s = _int(problems, data, "timeout_s", DEFAULT_TIMEOUT_S, 1, MAX_TIMEOUT_S)
    problems.raise_if_any()
    return Function(
        name=name, image=image.strip(), command=command, env=env, memory_mb=memory_mb,
        cpu_weight=cpu_weight, concurrency=concurrency, queue=queue, timeout_s=timeout_s,
        created_at=now_ns,
    )


def stderr_tail(data: bytes, lines: int = STDERR_TAIL_LINES,
                limit: int = STDERR_TAIL_BYTES) -> str:
    """The last `lines` lines of stderr, at most `limit` bytes of them, as text."""
    kept = data.rstrip(b"\n").split(b"\n")[-lines:] if data else []
    text = b"\n".join(kept)[-limit:]
    return text.decode("utf-8", errors="replace")


# Failure reasons a cell writes for a function's task (cell/tasks.py), which the invoker maps
# to HTTP statuses (brain/invoker.py).
def timeout_reason(timeout_s: int) -> str:
    return f"Timed out after {timeout_s} s"


TIMEOUT_REASON_PREFIX = "Timed out after "
STDOUT_TOO_LARGE_REASON = f"stdout exceeded {MAX_STDOUT_BYTES} bytes"
