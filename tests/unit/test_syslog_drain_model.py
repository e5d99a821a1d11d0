"""Drain URLs: validation (API and ltc), redaction, and their place in the desired LRP."""

from __future__ import annotations

import pytest

from lattice.client.app_spec import CreateFlags, build_create_request, parse_create_flags
from lattice.client.app_updater import UpdateFlags, build_update_request, parse_update_flags
from lattice.client.errors import InvalidInput
from lattice.models import SchedulingInfo, ValidationError, parse_desired_lrp
from lattice.models.desired import parse_desired_lrp_update
from lattice.models.errors import Problems
from lattice.models.syslog_drain import (
    MAX_DRAINS,
    DrainAddress,
    drain_address,
    drain_url_problem,
    parse_syslog_drains,
    redact,
)


@pytest.mark.parametrize(("url", "address"), [
    ("tcp://127.0.0.1:5140", DrainAddress("tcp", "127.0.0.1", 5140)),
    ("syslog://logs.example.com:514", DrainAddress("syslog", "logs.example.com", 514)),
    ("TCP://Logs.Example.com:514/", DrainAddress("tcp", "logs.example.com", 514)),
    ("tcp://user:s3cret@10.0.0.1:6514", DrainAddress("tcp", "10.0.0.1", 6514)),
    ("tcp://[::1]:514", DrainAddress("tcp", "::1", 514)),
])
def test_good_urls(url: str, address: DrainAddress) -> None:
    assert drain_url_problem(url) is None
    assert drain_address(url) == address


@pytest.mark.parametrize(("url", "says"), [
    ("", "non-empty"),
    (42, "non-empty"),
    ("https://logs.example.com:443", "scheme must be tcp:// or syslog://"),
    ("syslog-tls://logs.example.com:6514", "scheme must be"),
    ("logs.example.com:514", "scheme must be"),
    ("tcp://:514", "has no host"),
    ("tcp://logs.example.com", "has no port"),
    ("tcp://logs.example.com:0", "outside 1-65535"),
    ("tcp://logs.example.com:99999", "numeric port"),
    ("tcp://logs.example.com:abc", "numeric port"),
    ("tcp://logs.example.com:514/path", "no path"),
    ("tcp://logs.example.com:514?drain-type=all", "no path, query"),
    ("tcp://bad_host!:514", "invalid host name"),
    ("tcp://logs.example.com :514", "spaces"),
])
def test_bad_urls_say_what_is_wrong(url: object, says: str) -> None:
    problem = drain_url_problem(url)
    assert problem is not None
    assert says in problem


def test_a_bad_url_with_credentials_is_named_without_them() -> None:
    problem = drain_url_problem("https://alice:hunter2@logs.example.com:443")
    assert problem is not None
    assert "hunter2" not in problem
    assert "alice" not in problem
    assert "https://***@logs.example.com:443" in problem


@pytest.mark.parametrize(("url", "shown"), [
    ("tcp://user:pass@host:514", "tcp://***@host:514"),
    ("tcp://token@host:514", "tcp://***@host:514"),
    ("tcp://u:p@ss@host:514", "tcp://***@host:514"),     # '@' inside the password
    ("tcp://host:514", "tcp://host:514"),
    ("tcp://host:514/a@b", "tcp://host:514/a@b"),        # '@' after the authority
    ("user:pass@host", "***"),
])
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_every_bad_drain_is_named_and_duplicates_count_once() -> None:
    problems = Problems()
    drains = parse_syslog_drains(problems, [
        "tcp://a.example.com:514", "ftp://b:21", "tcp://a.example.com:514", "tcp://c",
    ])
    assert drains == ("tcp://a.example.com:514",)
    assert [e.field for e in problems.errors] == ["syslog_drains[1]", "syslog_drains[3]"]


def test_too_many_drains() -> None:
    problems = Problems()
    parse_syslog_drains(problems, [f"tcp://h:{1000 + i}" for i in range(MAX_DRAINS + 1)])
    assert [e.field for e in problems.errors] == ["syslog_drains"]


def test_create_request_keeps_drains_in_scheduling_info() -> None:
    lrp = parse_desired_lrp({"process_guid": "web", "image": "i",
                             "syslog_drains": ["tcp://127.0.0.1:5140"]}, epoch="e")
    assert lrp.scheduling.syslog_drains == ("tcp://127.0.0.1:5140",)
    stored = SchedulingInfo.from_dict(lrp.scheduling.to_dict())
    assert stored.syslog_drains == ("tcp://127.0.0.1:5140",)
    # Written before drains existed: none.
    old = lrp.scheduling.to_dict()
    del old["syslog_drains"]
    assert SchedulingInfo.from_dict(old).syslog_drains == ()


def test_create_request_names_every_bad_drain() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_desired_lrp({"process_guid": "web", "image": "i",
                           "syslog_drains": ["udp://h:514", "tcp://h"]}, epoch="e")
    assert [e.field for e in caught.value.errors] == ["syslog_drains[0]", "syslog_drains[1]"]
    with pytest.raises(ValidationError) as caught:
        parse_desired_lrp({"process_guid": "web", "image": "i",
                           "syslog_drains": "tcp://h:514"}, epoch="e")
    assert [e.field for e in caught.value.errors] == ["syslog_drains"]


def test_update_replaces_or_removes_drains_without_rolling() -> None:
    lrp = parse_desired_lrp({"process_guid": "web", "image": "i",
                             "syslog_drains": ["tcp://h:1"]}, epoch="e")
    update = parse_desired_lrp_update({"syslog_drains": ["tcp://h:2"]}, (8080,))
    assert update.apply_run(lrp.run, lrp.scheduling) is None
    assert update.apply(lrp.scheduling).syslog_drains == ("tcp://h:2",)
    cleared = parse_desired_lrp_update({"syslog_drains": []}, (8080,))
    assert cleared.apply(lrp.scheduling).syslog_drains == ()
    untouched = parse_desired_lrp_update({"instances": 2}, (8080,))
    assert untouched.apply(lrp.scheduling).syslog_drains == ("tcp://h:1",)
    with pytest.raises(ValidationError) as caught:
        parse_desired_lrp_update({"syslog_drains": ["tcp://h"]}, (8080,))
    assert [e.field for e in caught.value.errors] == ["syslog_drains[0]"]


def test_ltc_create_flag() -> None:
    spec, _ = parse_create_flags(CreateFlags(name="web", image="i", syslog_drains=(
        "tcp://127.0.0.1:5140", "syslog://logs.example.com:514", "tcp://127.0.0.1:5140")))
    assert spec.syslog_drains == ("tcp://127.0.0.1:5140", "syslog://logs.example.com:514")
    assert build_create_request(spec, "d")["syslog_drains"] == list(spec.syslog_drains)
    plain, _ = parse_create_flags(CreateFlags(name="web", image="i"))
    assert "syslog_drains" not in build_create_request(plain, "d")
    with pytest.raises(InvalidInput) as caught:
        parse_create_flags(CreateFlags(name="web", image="i",
                                       syslog_drains=("http://u:pw@h:80", "tcp://h")))
    assert [e.field for e in caught.value.fields] == ["syslog-drain", "syslog-drain"]
    assert "pw" not in str(caught.value)


def test_ltc_update_flags() -> None:
    spec, _ = parse_update_flags(UpdateFlags(name="web", syslog_drains=("tcp://h:514",)))
    assert spec.syslog_drains == ("tcp://h:514",)
    assert not spec.rolls
    removed, _ = parse_update_flags(UpdateFlags(name="web", no_syslog_drains=True))
    assert removed.syslog_drains == ()
    lrp = parse_desired_lrp({"process_guid": "web", "image": "i"}, epoch="e")
    assert build_update_request(removed, lrp, "d") == {"syslog_drains": []}
    with pytest.raises(InvalidInput):
        parse_update_flags(UpdateFlags(name="web", syslog_drains=("tcp://h:1",),
                                       no_syslog_drains=True))
