"""ltc's exit codes: stable, so scripts can tell failures apart. Lattice's numbers are kept.

    code  name               when
    0     SUCCESS
    10    BAD_TARGET         no target set, the box does not answer, is not a lattice, or
                             refuses the credentials (none or wrong ones)
    11    PLACEMENT_ERROR    an instance cannot be placed on any cell (no cell, no room)
    12    FILE_SYSTEM_ERROR  the config file cannot be read or written
    13    INVALID_SYNTAX     bad arguments or flags; refused before anything was sent
    14    COMMAND_FAILED     the API refused the request, the app is unknown or keeps crashing
    15    BAD_DOCKER         the image does not exist on the box
    16    TIMEOUT            instances were not all RUNNING within --timeout
    130   INTERRUPTED        Ctrl-C (128 + SIGINT); `ltc logs` ends with 0 instead
"""

from __future__ import annotations

import enum

from lattice.client.errors import (
    ApiError,
    BadTarget,
    ClientError,
    ConfigError,
    InvalidInput,
    PlacementFailed,
    Unauthorized,
    WaitTimedOut,
)


class ExitCode(enum.IntEnum):
    SUCCESS = 0
    BAD_TARGET = 10
    PLACEMENT_ERROR = 11
    FILE_SYSTEM_ERROR = 12
    INVALID_SYNTAX = 13
    COMMAND_FAILED = 14
    BAD_DOCKER = 15
    TIMEOUT = 16
    INTERRUPTED = 130


def is_image_problem(error: ApiError) -> bool:
    """The API reports a missing image as an invalid `image` field of a 400."""
    return error.status == 400 and any(f.field == "image" for f in error.fields)


def exit_code_for(error: ClientError) -> ExitCode:
    if isinstance(error, InvalidInput):
        return ExitCode.INVALID_SYNTAX
    if isinstance(error, ConfigError):
        return ExitCode.FILE_SYSTEM_ERROR
    if isinstance(error, BadTarget | Unauthorized):
        return ExitCode.BAD_TARGET
    if isinstance(error, PlacementFailed):
        return ExitCode.PLACEMENT_ERROR
    if isinstance(error, WaitTimedOut):
        return ExitCode.TIMEOUT
    if isinstance(error, ApiError) and is_image_problem(error):
        return ExitCode.BAD_DOCKER
    return ExitCode.COMMAND_FAILED
