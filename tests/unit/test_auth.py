"""Basic credentials: matching, parsing and never showing the password."""

from __future__ import annotations

import base64

import pytest

from lattice.auth import Credentials, from_env

CREDS = Credentials("admin", "s3cret")


def test_its_own_header_matches() -> None:
    assert CREDS.matches(CREDS.header())


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer x",
        "Basic !!!notbase64",
        "Basic " + base64.b64encode(b"admin").decode(),           # no colon
        "Basic " + base64.b64encode(b"admin:wrong").decode(),
        "Basic " + base64.b64encode(b"other:s3cret").decode(),
        "Basic " + base64.b64encode(b"\xff:\xfe").decode(),
    ],
)
def test_anything_else_does_not(header: str | None) -> None:
    assert not CREDS.matches(header)


def test_the_password_is_not_in_the_repr() -> None:
    assert "s3cret" not in repr(CREDS)


def test_from_env() -> None:
    assert from_env({}) is None
    assert from_env({"LATTICE_USERNAME": "a", "LATTICE_PASSWORD": "b"}) == Credentials("a", "b")
    with pytest.raises(ValueError, match="both"):
        from_env({"LATTICE_USERNAME": "a"})
