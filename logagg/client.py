"""The subscriber side: what `ltc logs` uses to read an app's lines.

`base_url` is where to connect (`http://127.0.0.1:8080`); `host`, when given, is sent as the
Host header, which is how the router is asked for `doppler.<domain>`. Every failure is a
LogStreamError (see logagg.errors); a stream the server closes simply ends the iteration.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp

from logagg.crashes import CrashRecord
from logagg.envelope import Envelope, parse_envelope
from logagg.errors import InvalidEnvelope, LogStreamError

# Pings find an aggregator (or a router in between) that vanished without closing.
HEARTBEAT_S = 30.0


def _url(base_url: str, app_id: str, endpoint: str) -> str:
    # quote(safe="") so that an odd app id stays one path segment; the server judges it.
    return f"{base_url.rstrip('/')}/apps/{quote(app_id, safe='')}/{endpoint}"


def _headers(host: str | None) -> dict[str, str] | None:
    return None if host is None else {"Host": host}


def _decode(data: Any, url: str) -> Envelope:
    try:
        return parse_envelope(data)
    except InvalidEnvelope as exc:
        raise LogStreamError(f"{url} sent something that is not an envelope: {exc}") from exc


async def tail(session: aiohttp.ClientSession, base_url: str, app_id: str, *,
               host: str | None = None, with_recent: bool = False) -> AsyncIterator[Envelope]:
    """The app's live lines, as they arrive, until the server closes the stream.

    `with_recent`: the app's recent lines first, then the live ones, with neither a gap nor a
    duplicate between them (the server takes both in one step).
    """
    url = _url(base_url, app_id, "stream")
    if with_recent:
        url += "?recent=true"
    async for envelope in _websocket_lines(session, url, host):
        yield envelope


async def firehose(session: aiohttp.ClientSession, base_url: str, *,
                   host: str | None = None) -> AsyncIterator[Envelope]:
    """Every app's live lines (the session must carry the box's credentials, if it has any)."""
    async for envelope in _websocket_lines(session, f"{base_url.rstrip('/')}/firehose", host):
        yield envelope


async def _websocket_lines(session: aiohttp.ClientSession, url: str,
                           host: str | None) -> AsyncIterator[Envelope]:
    try:
        ws = await session.ws_connect(url, headers=_headers(host), heartbeat=HEARTBEAT_S)
    except aiohttp.WSServerHandshakeError as exc:
        raise LogStreamError(
            f"{url} refused the log stream: HTTP {exc.status} {exc.message}"
        ) from exc
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise LogStreamError(
            f"cannot connect to the log aggregator at {url}: {exc or type(exc).__name__}"
        ) from exc
    async with ws:
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                try:
                    data = json.loads(msg.data)
                except json.JSONDecodeError as exc:
                    raise LogStreamError(f"{url} sent a frame that is not JSON: {exc}") from exc
                yield _decode(data, url)
            elif msg.type is aiohttp.WSMsgType.ERROR:
                error = ws.exception()
                raise LogStreamError(f"log stream {url} broke: {error}") from error
            # Other frames (binary, pings) carry no lines; closing ends the `async for`.


async def recent(session: aiohttp.ClientSession, base_url: str, app_id: str, *,
                 host: str | None = None) -> list[Envelope]:
    """The app's recent lines, oldest first."""
    url = _url(base_url, app_id, "recentlogs")
    data = await _get_list(session, url, host)
    return [_decode(item, url) for item in data]


async def crashes(session: aiohttp.ClientSession, base_url: str, app_id: str, *,
                  host: str | None = None) -> list[CrashRecord]:
    """The last crash of each crashed instance of the app, by index, with its last lines."""
    url = _url(base_url, app_id, "crashes")
    data = await _get_list(session, url, host)
    try:
        return [CrashRecord.from_dict(item) for item in data]
    except (InvalidEnvelope, ValueError, KeyError, TypeError) as exc:
        raise LogStreamError(f"{url} sent something that is not a crash record: {exc}") from exc


async def _get_list(session: aiohttp.ClientSession, url: str, host: str | None) -> list[Any]:
    try:
        async with session.get(url, headers=_headers(host)) as response:
            if response.status != 200:
                body = await response.text()
                raise LogStreamError(
                    f"{url} answered HTTP {response.status}: {_error_message(body)}"
                )
            try:
                data = await response.json(content_type=None)
            except ValueError as exc:
                raise LogStreamError(f"{url} answered something that is not JSON: {exc}") from exc
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise LogStreamError(
            f"cannot reach the log aggregator at {url}: {exc or type(exc).__name__}"
        ) from exc
    if not isinstance(data, list):
        raise LogStreamError(f"{url} answered {type(data).__name__}, expected a JSON array")
    return data


def _error_message(body: str) -> str:
    """The message of the box's JSON error body, or the start of whatever else was sent."""
    try:
        message = json.loads(body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return body[:200] or "(empty body)"
    return str(message)
