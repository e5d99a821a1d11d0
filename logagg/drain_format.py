"""Log envelopes as RFC 5424 syslog messages, framed for TCP by octet counting (RFC 6587). Pure.

    <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA MSG

    PRI         facility user (1) x 8 + severity: info (6) for OUT, error (3) for ERR: 14 or 11
    TIMESTAMP   the envelope's time, UTC, microseconds (RFC 5424 allows no more digits)
    HOSTNAME    the app's process_guid (Lattice has no org/space to prefix, as CF does)
    APP-NAME    the process_guid again, cut to RFC 5424's 48 characters
    PROCID      `[SOURCE/INDEX]`: `[APP/0]`, `[RTR/1]`, `[CELL/0]`, `[HEALTH/2]`; `[LGR]` when no
                instance applies. CF writes `[APP/PROC/WEB/0]`; Lattice's source types are
                already the process type, so the shorter form is the same idea.
    MSGID, SD   `-` (none)
    MSG         the line, without BOM (as loggregator sends it), ending in one "\\n"

On the wire each message is `LEN SP MESSAGE`, LEN being MESSAGE's length in bytes, so a line
may hold any byte, even a newline, without breaking the framing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from logagg.envelope import Envelope

FACILITY_USER = 1
SEVERITY_INFO = 6
SEVERITY_ERROR = 3
VERSION = 1
NILVALUE = "-"
MAX_HOSTNAME = 255
MAX_APP_NAME = 48
MAX_PROCID = 128


def priority(envelope: Envelope) -> int:
    severity = SEVERITY_ERROR if envelope.message_type == "ERR" else SEVERITY_INFO
    return FACILITY_USER * 8 + severity


def timestamp(ns: int) -> str:
    """`2026-11-30T23:59:59.123456Z`: RFC 3339 in UTC, to the microsecond."""
    seconds, rest = divmod(ns, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{rest // 1000:06d}Z"


def header_field(text: str, limit: int) -> str:
    """A header field: printable US-ASCII without spaces (RFC 5424's PRINTUSASCII), at most
    `limit` characters, `-` when empty. Other characters become `_` rather than break parsing."""
    cleaned = "".join(c if "!" <= c <= "~" else "_" for c in text[:limit])
    return cleaned or NILVALUE


def procid(envelope: Envelope) -> str:
    source = envelope.source_type
    if envelope.source_instance:
        source += f"/{envelope.source_instance}"
    return header_field(f"[{source}]", MAX_PROCID)


def format_message(envelope: Envelope) -> bytes:
    """One RFC 5424 message (without the octet-count frame)."""
    header = (
        f"<{priority(envelope)}>{VERSION} {timestamp(envelope.timestamp)} "
        f"{header_field(envelope.app_id, MAX_HOSTNAME)} "
        f"{header_field(envelope.app_id, MAX_APP_NAME)} {procid(envelope)} "
        f"{NILVALUE} {NILVALUE} "
    )
    # Lines arrive without their newline; one that still has one keeps just one.
    body = envelope.message.rstrip("\r\n") + "\n"
    return header.encode("ascii") + body.encode("utf-8", errors="replace")


def frame(message: bytes) -> bytes:
    """RFC 6587 octet counting: `LEN SP MESSAGE`."""
    return b"%d %s" % (len(message), message)


def encode(envelope: Envelope) -> bytes:
    return frame(format_message(envelope))


def split_frames(data: bytes) -> tuple[list[bytes], bytes]:
    """The whole messages at the start of `data`, and the incomplete rest (a receiver's side).

    ValueError if `data` is not octet-counted (a frame must start with digits and a space).
    """
    messages: list[bytes] = []
    position = 0
    while True:
        space = data.find(b" ", position)
        if space < 0:
            if not data[position:].isdigit() and data[position:]:
                raise ValueError(f"not an octet-counted frame: {data[position:position + 20]!r}")
            return messages, data[position:]
        length_text = data[position:space]
        if not length_text.isdigit():
            raise ValueError(f"not an octet-counted frame: {data[position:position + 20]!r}")
        end = space + 1 + int(length_text)
        if end > len(data):
            return messages, data[position:]
        messages.append(data[space + 1:end])
        position = end
