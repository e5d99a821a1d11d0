"""Storage of the box's state in etcd: key layout, typed client, informers, leased records."""

from lattice.store import keys
from lattice.store.batches import MAX_TXN_OPS, TXN_BATCH, batches
from lattice.store.cluster import ensure_cluster_id
from lattice.store.errors import StoreError, StoreUnavailable, TxnTooLarge, WatchLost
from lattice.store.etcd import (
    Delete,
    DeletePrefix,
    Etcd,
    Exists,
    Get,
    GetPrefix,
    KeyValue,
    ModRevisionIs,
    Put,
    WatchEvent,
)
from lattice.store.informer import Change, Informer
from lattice.store.presence import LeasedRecords

__all__ = [
    "MAX_TXN_OPS",
    "TXN_BATCH",
    "Change",
    "Delete",
    "DeletePrefix",
    "Etcd",
    "Exists",
    "Get",
    "GetPrefix",
    "Informer",
    "KeyValue",
    "LeasedRecords",
    "ModRevisionIs",
    "Put",
    "StoreError",
    "StoreUnavailable",
    "TxnTooLarge",
    "WatchEvent",
    "WatchLost",
    "batches",
    "ensure_cluster_id",
    "keys",
]
