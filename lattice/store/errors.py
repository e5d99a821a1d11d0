"""Errors of the store layer; aetcd's and grpc's are translated here, at the boundary.

    StoreError
    ├── StoreUnavailable   etcd cannot be reached (or the request timed out)
    └── WatchLost          a watch ended or fell behind compaction; relist and watch again
"""


class StoreError(Exception):
    """Base of every error the store raises."""


class StoreUnavailable(StoreError):
    """etcd cannot be reached right now."""


class WatchLost(StoreError):
    """A watch stream ended; the caller must relist to be sure it missed nothing."""
