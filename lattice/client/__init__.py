"""The ltc client's domain code: the target, the API client, app operations, log tailing.

The `ltc` CLI (lattice/cli/ltc.py) is a thin shell over these. Each name below is imported from
its module on first use (PEP 562): importing one small module of this package (errors, target)
must not import them all, and with them aiohttp and the log client, at every `ltc` start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lattice.lazy_names import lazy_getattr

if TYPE_CHECKING:
    from lattice.client.app_runner import (
        AppRunner,
        AppStatus,
        AppSummary,
        InstanceStatus,
        Progress,
        assess,
        route_urls,
        wait_until_running,
    )
    from lattice.client.app_spec import (
        AppSpec,
        CreateFlags,
        RouteSpec,
        build_create_request,
        parse_create_flags,
        parse_duration,
    )
    from lattice.client.box_info import CellState, Info
    from lattice.client.connection import Connection, connect
    from lattice.client.errors import (
        ApiError,
        AppAlreadyExists,
        AppNotFound,
        BadTarget,
        ClientError,
        ConfigError,
        InstancesCrashed,
        InvalidInput,
        InvalidRequest,
        LogStreamFailed,
        PlacementFailed,
        ProtocolError,
        WaitFailed,
        WaitTimedOut,
    )
    from lattice.client.logs import tail_logs
    from lattice.client.names import static_address
    from lattice.client.receptor import ReceptorClient
    from lattice.client.resolve import LatticeResolver
    from lattice.client.target import Target, load_target, parse_target, save_target

_NAMES_BY_MODULE = {
    "app_runner": ["AppRunner", "AppStatus", "AppSummary", "InstanceStatus", "Progress", "assess",
                   "route_urls", "wait_until_running"],
    "app_spec": ["AppSpec", "CreateFlags", "RouteSpec", "build_create_request",
                 "parse_create_flags", "parse_duration"],
    "box_info": ["CellState", "Info"],
    "connection": ["Connection", "connect"],
    "errors": ["ApiError", "AppAlreadyExists", "AppNotFound", "BadTarget", "ClientError",
               "ConfigError", "InstancesCrashed", "InvalidInput", "InvalidRequest",
               "LogStreamFailed", "PlacementFailed", "ProtocolError", "WaitFailed",
               "WaitTimedOut"],
    "logs": ["tail_logs"],
    "receptor": ["ReceptorClient"],
    "names": ["static_address"],
    "resolve": ["LatticeResolver"],
    "target": ["Target", "load_target", "parse_target", "save_target"],
}
_MODULE_OF = {name: module for module, names in _NAMES_BY_MODULE.items() for name in names}

__all__ = [
    "ApiError",
    "AppAlreadyExists",
    "AppNotFound",
    "AppRunner",
    "AppSpec",
    "AppStatus",
    "AppSummary",
    "BadTarget",
    "CellState",
    "ClientError",
    "ConfigError",
    "Connection",
    "CreateFlags",
    "Info",
    "InstanceStatus",
    "InstancesCrashed",
    "InvalidInput",
    "InvalidRequest",
    "LatticeResolver",
    "LogStreamFailed",
    "PlacementFailed",
    "Progress",
    "ProtocolError",
    "ReceptorClient",
    "RouteSpec",
    "Target",
    "WaitFailed",
    "WaitTimedOut",
    "assess",
    "build_create_request",
    "connect",
    "load_target",
    "parse_create_flags",
    "parse_duration",
    "parse_target",
    "route_urls",
    "save_target",
    "static_address",
    "tail_logs",
    "wait_until_running",
]


__getattr__ = lazy_getattr(__name__, _MODULE_OF)
