"""etcd's limit on one transaction, and the splitting of large writes into transactions under it.

etcd refuses a transaction with more than `--max-txn-ops` operations (default 128, counted for
the compares and for each branch separately) with "too many operations in txn request". Writes
whose size grows with an app's instance count (create and delete of a 1,000-instance app) are
therefore split; each caller says why its split is safe.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

# etcd's default --max-txn-ops; the box's etcd runs with the default (lattice/etcd_server.py).
MAX_TXN_OPS = 128
# What one batch of a split write holds: under the limit with room for a few fixed operations
# (the desired record, a guard) in the same transaction.
TXN_BATCH = 100

T = TypeVar("T")


def batches(items: Sequence[T], size: int = TXN_BATCH) -> Iterator[Sequence[T]]:
    """`items` in consecutive slices of at most `size`, in order; nothing for no items."""
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size}")
    for start in range(0, len(items), size):
        yield items[start:start + size]
