"""Reading a create request's JSON body into a model, as the task and function endpoints do.

Every way the body can be wrong is a 400, never a 500: a body that is not JSON is InvalidJSON;
otherwise every bad field (the model's own checks, an image the box lacks, what the caller
checks on the parsed model) is listed in one InvalidRequest.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from lattice.brain.errors import InvalidJSON, InvalidRequest
from lattice.brain.images import ImageInspector
from lattice.models import FieldError, ValidationError

Model = TypeVar("Model")


async def json_body(request: web.Request) -> Any:
    """The decoded body; InvalidJSON (400) naming the problem when it is not JSON."""
    try:
        return await request.json(loads=json.loads)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidJSON(f"the request body is not valid JSON: {exc}") from exc


async def missing_image(images: ImageInspector, data: Any) -> list[FieldError]:
    """The `image` field's problem when the body names an image the box's engine lacks.

    No registry is reachable, so an image the engine lacks cannot run. The field's own shape
    is the model's to check: anything but a non-blank string is left to the parser.
    """
    image = data.get("image") if isinstance(data, dict) else None
    if (isinstance(image, str) and image.strip()
            and (await images.inspect(image.strip())).exists is False):
        return [FieldError("image", f"image {image!r} not found on the box")]
    return []


async def parse_create_body(
    request: web.Request,
    parse: Callable[[Any], Model],
    *,
    images: ImageInspector,
    what: str,
    conflicts: Callable[[Model], list[FieldError]] = lambda _: [],
) -> Model:
    """The body parsed by `parse`; InvalidRequest("invalid WHAT") listing every problem.

    The problems come in this order: the model's, the image's, then `conflicts` (checked
    only on a body that parsed, e.g. a route another app holds).
    """
    data = await json_body(request)
    problems = await missing_image(images, data)
    parsed = None
    try:
        parsed = parse(data)
    except ValidationError as exc:
        problems = exc.errors + problems
    if parsed is not None:
        problems += conflicts(parsed)
    if problems or parsed is None:
        raise InvalidRequest(f"invalid {what}", problems)
    return parsed
