"""The event stream's `process_guid` filter: parsing the query, and which events pass."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from multidict import MultiDict

from lattice.brain.errors import InvalidRequest
from lattice.brain.events import (
    Event,
    EventHub,
    Subscriber,
    event_for,
    parse_filter,
    process_guid_of,
)
from lattice.store import Change, keys


def test_no_filter_means_every_event() -> None:
    assert parse_filter(MultiDict()) is None


def test_the_filter_may_repeat_and_list_guids_with_commas() -> None:
    query = MultiDict([("process_guid", "web,worker"), ("process_guid", "api")])
    assert parse_filter(query) == frozenset({"web", "worker", "api"})


@pytest.mark.parametrize("value", ["", "web,", "a b", "web/0", "x" * 64])
def test_a_malformed_guid_is_refused_naming_the_parameter(value: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_filter(MultiDict([("process_guid", value)]))
    assert refused.value.status == 400
    assert "process_guid" in refused.value.message
    assert [f.field for f in refused.value.fields] == ["process_guid"]


def test_an_unknown_parameter_is_refused_naming_it() -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_filter(MultiDict([("proces_guid", "web")]))
    assert "'proces_guid'" in refused.value.message


def test_events_know_their_app_from_the_key() -> None:
    assert process_guid_of(keys.SCHEDULING, keys.scheduling("web")) == "web"
    assert process_guid_of(keys.ACTUAL, keys.actual("web", 12)) == "web"
    assert process_guid_of(keys.TASKS, keys.TASKS + "t1") is None
    event = event_for("actual_lrp", Change(keys.actual("web", 0), None, b"{}"), "web")
    assert event is not None
    assert event.process_guid == "web"
    assert b"process_guid" not in event.encode()     # the filter's key, not sent


async def test_a_filtered_subscriber_gets_only_its_apps_events() -> None:
    hub = EventHub(buffer=8)
    with hub.subscribe(frozenset({"web"})) as web, hub.subscribe() as everything:
        hub.publish(Event("actual_lrp_created", {"n": 1}, "worker"))
        hub.publish(Event("task_created", {"n": 2}, None))
        hub.publish(Event("actual_lrp_created", {"n": 3}, "web"))
        hub.close()
        assert [e.data["n"] async for e in _until_closed(web)] == [3]
        assert [e.data["n"] async for e in _until_closed(everything)] == [1, 2, 3]


async def _until_closed(subscriber: Subscriber) -> AsyncIterator[Event]:
    while (event := await subscriber.next()) is not None:
        yield event
