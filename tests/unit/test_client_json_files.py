"""The shape check of a request file (`ltc submit-lrp`, `ltc submit-task`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lattice.client.app_updater import read_lrp_file
from lattice.client.errors import ConfigError, InvalidInput
from lattice.client.json_files import read_json_object_file
from lattice.client.tasks import read_task_file


def test_an_object_is_returned_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "lrp.json"
    path.write_text('{"process_guid": "web", "instances": 2}')
    assert read_json_object_file(path, "a DesiredLRP") == {"process_guid": "web", "instances": 2}


def test_a_missing_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    with pytest.raises(ConfigError, match=f"cannot read {path}"):
        read_json_object_file(path, "a task")


def test_text_that_is_not_json_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(InvalidInput) as caught:
        read_json_object_file(path, "a task")
    assert caught.value.fields[0].field == str(path)
    assert "is not valid JSON" in caught.value.fields[0].message


@pytest.mark.parametrize(
    ("read", "what"), [(read_lrp_file, "a DesiredLRP"), (read_task_file, "a task")]
)
def test_json_that_is_not_an_object_says_what_was_expected(
    tmp_path: Path, read: Callable[[Path], dict[str, Any]], what: str
) -> None:
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    with pytest.raises(InvalidInput, match=rf"must hold one JSON object \({what}\)"):
        read(path)
