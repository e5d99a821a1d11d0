"""Crash logs (pure): the notice's format, the last 50 lines frozen per crashed instance."""

from __future__ import annotations

from logagg.aggregator import Aggregator
from logagg.config import LogaggConfig
from logagg.crashes import CrashLogs, CrashRecord, crash_notice, parse_crash_notice
from logagg.envelope import Envelope


def app_line(app: str, index: int, n: int) -> Envelope:
    return Envelope(app, "APP", str(index), "OUT", n, f"line {n}")


def test_crash_notice_round_trips_with_and_without_exit_status() -> None:
    notice = crash_notice("web", 2, "Exited with status 3", 3)
    assert notice.source_type == "CELL"
    assert notice.message == "Crashed, exit status 3: Exited with status 3"
    assert parse_crash_notice(notice) == (3, "Exited with status 3")
    assert parse_crash_notice(crash_notice("web", 0, "health check failed", None)) == (
        None, "health check failed")
    assert parse_crash_notice(app_line("web", 0, 1)) is None
    assert parse_crash_notice(Envelope("web", "CELL", "0", "OUT", 1, "Creating container")) is None


def test_the_last_50_lines_of_a_crashed_instance_are_kept_past_its_restart() -> None:
    logs = CrashLogs()
    for n in range(120):
        logs.observe(app_line("web", 0, n))
    logs.observe(app_line("web", 1, 7))
    logs.observe(crash_notice("web", 0, "Exited with status 1", 1))
    logs.observe(app_line("web", 0, 500))            # the restarted instance
    [record] = logs.crashes("web")
    assert (record.index, record.exit_status, record.reason) == ("0", 1, "Exited with status 1")
    assert [e.timestamp for e in record.lines] == list(range(70, 120))
    assert CrashRecord.from_dict(record.to_dict()) == record


def test_a_second_crash_replaces_the_first_and_forget_clears() -> None:
    logs = CrashLogs()
    logs.observe(app_line("web", 0, 1))
    logs.observe(crash_notice("web", 0, "first", 1))
    logs.observe(app_line("web", 0, 2))
    logs.observe(crash_notice("web", 0, "second", 2))
    logs.observe(crash_notice("web", 10, "other", None))
    assert [(r.index, r.reason, [e.timestamp for e in r.lines]) for r in logs.crashes("web")] == [
        ("0", "second", [2]), ("10", "other", [])]
    logs.forget_tails("web")
    assert len(logs.crashes("web")) == 2            # idle: tails go, crash records stay
    logs.forget("web")
    assert logs.crashes("web") == []


def test_recent_and_subscription_together_have_every_line_once() -> None:
    aggregator = Aggregator(LogaggConfig(etcd_endpoints="127.0.0.1:2379", recent_lines=5))
    for n in range(8):
        aggregator.ingest(app_line("web", 0, n))
    recent, subscription = aggregator.subscribe_with_recent("web")
    aggregator.ingest(app_line("web", 0, 8))
    live = subscription.get_nowait()
    assert [e.timestamp for e in recent] == [3, 4, 5, 6, 7]
    assert live is not None
    assert live.timestamp == 8
    assert subscription.get_nowait() is None
    subscription.close()
