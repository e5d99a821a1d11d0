"""Reading a request that the user wrote as a JSON file (`ltc submit-lrp`, `ltc submit-task`).

Only the file's shape is checked here: it must be readable and hold one JSON object. Its fields
are the API's to validate, so that ltc and the API never disagree on what is valid.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lattice.client.errors import ConfigError, InvalidInput
from lattice.models import FieldError


def read_json_object_file(path: Path, what: str) -> dict[str, Any]:
    """The JSON object in `path`; `what` names it in the error (e.g. "a task")."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidInput([FieldError(str(path), f"is not valid JSON: {exc}")]) from exc
    if not isinstance(data, dict):
        raise InvalidInput([FieldError(str(path), f"must hold one JSON object ({what})")])
    return data
