"""The per-app ring buffer behind /recentlogs: order, capacity, isolation between apps."""

from __future__ import annotations

import pytest

from logagg.buffer import RecentLogs
from logagg.envelope import Envelope


def line(app_id: str, n: int) -> Envelope:
    return Envelope(app_id, "APP", "0", "OUT", n, f"line {n}")


def test_keeps_lines_oldest_first() -> None:
    recent = RecentLogs(capacity=5)
    for n in range(3):
        recent.append(line("web", n))
    assert [e.message for e in recent.recent("web")] == ["line 0", "line 1", "line 2"]


def test_drops_the_oldest_beyond_capacity() -> None:
    recent = RecentLogs(capacity=3)
    for n in range(7):
        recent.append(line("web", n))
    assert [e.timestamp for e in recent.recent("web")] == [4, 5, 6]


def test_apps_do_not_share_capacity() -> None:
    recent = RecentLogs(capacity=2)
    recent.append(line("quiet", 0))
    for n in range(10):
        recent.append(line("chatty", n))
    assert [e.timestamp for e in recent.recent("quiet")] == [0]
    assert [e.timestamp for e in recent.recent("chatty")] == [8, 9]
    assert recent.apps() == ["chatty", "quiet"]


def test_unknown_app_has_no_lines_and_forget_clears() -> None:
    recent = RecentLogs()
    assert recent.capacity == 1000
    assert recent.recent("nobody") == []
    recent.append(line("web", 1))
    recent.forget("web")
    assert recent.recent("web") == []


def test_returns_a_copy() -> None:
    recent = RecentLogs(capacity=3)
    recent.append(line("web", 1))
    snapshot = recent.recent("web")
    recent.append(line("web", 2))
    assert len(snapshot) == 1


@pytest.mark.parametrize("capacity", [0, -1])
def test_rejects_a_capacity_below_one(capacity: int) -> None:
    with pytest.raises(ValueError, match="capacity must be at least 1"):
        RecentLogs(capacity)


def test_an_app_idle_for_an_hour_is_dropped_a_busy_one_kept() -> None:
    now = [0.0]
    recent = RecentLogs(capacity=3, clock=lambda: now[0])
    recent.append(line("quiet", 1))
    now[0] = 1800.0
    recent.append(line("busy", 2))
    now[0] = 3599.0
    assert recent.drop_idle() == []
    now[0] = 3600.0
    assert recent.drop_idle() == ["quiet"]
    assert recent.apps() == ["busy"]
    assert recent.recent("quiet") == []
