"""The ltc client's domain code: the target, the API client, app operations, log tailing.

The `ltc` CLI (lattice/cli/ltc.py) is a thin shell over these.
"""

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
from lattice.client.receptor import CellState, Info, ReceptorClient
from lattice.client.resolve import LatticeResolver, static_address
from lattice.client.target import Target, load_target, parse_target, save_target

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
