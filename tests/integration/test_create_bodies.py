"""Malformed bodies to the create endpoints that share lattice/brain/json_requests.py: each is a
400 with a stable error type (never a 500), against a real brain on a real etcd; nothing is
stored."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support_ltc import Brain, running_brain

pytestmark = pytest.mark.integration

ENDPOINTS = ["/v1/tasks", "/v1/functions"]


@pytest.fixture(scope="module")
def brain(module_etcd: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Brain]:
    with running_brain(module_etcd, "bodies.localhost", tmp_path_factory.mktemp("brain")
                       ) as the_brain:
        yield the_brain


def post(brain: Brain, path: str, raw: bytes) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", brain.port, timeout=10)
    try:
        conn.request("POST", path, body=raw, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def listed(brain: Brain, path: str) -> list[Any]:
    conn = http.client.HTTPConnection("127.0.0.1", brain.port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        assert response.status == 200
        return list(json.loads(response.read()))
    finally:
        conn.close()


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("raw", [b"{not json", b"", b"\xff\xfe{}"])
def test_a_body_that_is_not_json_is_invalid_json(brain: Brain, path: str, raw: bytes) -> None:
    status, body = post(brain, path, raw)
    assert (status, body["error"]["type"]) == (400, "InvalidJSON"), body
    assert body["error"]["message"].startswith("the request body is not valid JSON: ")
    assert listed(brain, path) == []


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("raw", [b"[1]", b'"image"', b"null", b"3"])
def test_json_that_is_not_an_object_is_an_invalid_request(brain: Brain, path: str,
                                                          raw: bytes) -> None:
    status, body = post(brain, path, raw)
    assert status == 400, body
    assert body["error"]["type"] == "InvalidRequest"
    assert body["error"]["fields"] == [{"field": "body", "message": "must be a JSON object"}]
    assert listed(brain, path) == []


@pytest.mark.parametrize(("path", "what", "first"), [("/v1/tasks", "task", "task_guid"),
                                                    ("/v1/functions", "function", "name")])
def test_the_models_problems_come_before_the_missing_image(brain: Brain, path: str, what: str,
                                                           first: str) -> None:
    status, body = post(brain, path, json.dumps({"image": "lattice/no-such-image:1"}).encode())
    assert status == 400, body
    assert body["error"]["message"] == f"invalid {what}"
    fields = body["error"]["fields"]
    assert fields[0]["field"] == first
    assert fields[-1] == {"field": "image",
                          "message": "image 'lattice/no-such-image:1' not found on the box"}
    assert listed(brain, path) == []
