"""The log aggregator (loggregator-style): recent lines per app, live tails over WebSocket.

Public surface, the only names other packages import:

    Envelope        one log line with its metadata (logagg.envelope)
    LogaggConfig    the aggregator's configuration (logagg.config)
    serve           run the aggregator until cancelled (logagg.main)
    LogPublisher    the producer side, used by cells (logagg.publisher)
    tail, recent    the subscriber side, used by ltc (logagg.client)
    crashes, firehose   crash logs of an app; every app's lines (logagg.client)
    CrashRecord     one instance's last crash: exit status, reason, last lines (logagg.crashes)
    LogStreamError  what tail and recent raise (logagg.errors)

The plain data types are imported here; the rest (the client on aiohttp, the publisher, the
server with etcd, gRPC and aiohttp.web) on first use (PEP 562), so that `ltc`, which reads
envelopes and crash records, does not pay for the server each time it starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lattice.lazy_names import lazy_getattr
from logagg.config import LogaggConfig
from logagg.crashes import CrashRecord
from logagg.envelope import Envelope
from logagg.errors import LogStreamError

# Importing the submodule logagg.crashes bound its name here; the package's `crashes` is the
# client function (below), so drop the module's binding for __getattr__ to find it.
globals().pop("crashes", None)

if TYPE_CHECKING:
    from logagg.client import crashes, firehose, recent, tail
    from logagg.main import serve
    from logagg.publisher import LogPublisher

_MODULE_OF = {
    "crashes": "client",
    "firehose": "client",
    "recent": "client",
    "tail": "client",
    "serve": "main",
    "LogPublisher": "publisher",
}

__all__ = ["CrashRecord", "Envelope", "LogPublisher", "LogStreamError", "LogaggConfig", "crashes",
           "firehose", "recent", "serve", "tail"]


__getattr__ = lazy_getattr(__name__, _MODULE_OF)
