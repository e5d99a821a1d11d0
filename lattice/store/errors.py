"""Errors of the store layer; aetcd's and grpc's are translated here, at the boundary.

    StoreError
    ├── StoreUnavailable   etcd cannot be reached (or the request timed out)
    └── WatchLost          a watch ended or fell behind compaction; relist and watch again

    TxnTooLarge            a bug, not a store condition: a caller built a transaction past etcd's
                           limit (store/batches.py); it is not a StoreError so that the API
                           does not report it as an unavailable store
"""


class StoreError(Exception):
    """Base of every error the store raises."""


class StoreUnavailable(StoreError):
    """etcd cannot be reached right now."""


class WatchLost(StoreError):
    """A watch stream ended; the caller must relist to be sure it missed nothing."""


class TxnTooLarge(Exception):
    """A transaction with more operations than etcd accepts; the caller must split it."""
