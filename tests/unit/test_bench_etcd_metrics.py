"""The scale benchmark's reading of etcd's /metrics: unary requests by method, keep-alives."""

from __future__ import annotations

from bench.scheduler.etcd_metrics import parse


def sample(name: str, method: str, service: str, kind: str, value: str, code: str = "OK") -> str:
    code_label = f'grpc_code="{code}",' if name == "grpc_server_handled_total" else ""
    return (f'{name}{{{code_label}grpc_method="{method}",grpc_service="etcdserverpb.{service}",'
            f'grpc_type="{kind}"}} {value}\n')


HANDLED = "grpc_server_handled_total"
PAGE = (
    "# HELP grpc_server_handled_total Total number of RPCs completed on the server.\n"
    "# TYPE grpc_server_handled_total counter\n"
    + sample(HANDLED, "Range", "KV", "unary", "10")
    + sample(HANDLED, "Range", "KV", "unary", "2", code="NotFound")
    + sample(HANDLED, "Txn", "KV", "unary", "5")
    + sample(HANDLED, "Put", "KV", "unary", "1e+03")
    + sample(HANDLED, "Watch", "Watch", "bidi_stream", "7")
    + sample(HANDLED, "LeaseGrant", "Lease", "unary", "3")
    + sample("grpc_server_msg_received_total", "LeaseKeepAlive", "Lease", "bidi_stream", "40")
    + "etcd_mvcc_put_total 999\n"
)


def test_counts_unary_requests_by_method_across_codes() -> None:
    counts = parse(PAGE)
    assert counts.by_method == {"Range": 12, "Txn": 5, "Put": 1000, "LeaseGrant": 3}
    assert counts.reads == 12
    assert counts.writes == 1005
    assert counts.keepalives == 40
    assert counts.requests == 12 + 1005 + 3 + 40


def test_the_difference_of_two_readings() -> None:
    later = parse(PAGE.replace("} 5\n", "} 9\n"))
    delta = later - parse(PAGE)
    assert delta.writes == 4
    assert delta.reads == 0
    assert delta.keepalives == 0


def test_comments_and_unknown_lines_are_ignored() -> None:
    assert parse("# only a comment\nnot a sample line at all {\n").requests == 0
