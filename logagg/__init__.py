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
"""

from logagg.client import crashes, firehose, recent, tail
from logagg.config import LogaggConfig
from logagg.crashes import CrashRecord
from logagg.envelope import Envelope
from logagg.errors import LogStreamError
from logagg.main import serve
from logagg.publisher import LogPublisher

__all__ = ["CrashRecord", "Envelope", "LogPublisher", "LogStreamError", "LogaggConfig", "crashes",
           "firehose", "recent", "serve", "tail"]
