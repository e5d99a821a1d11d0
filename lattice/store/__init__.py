"""Storage of the box's state in etcd: key layout, typed client, informers, leased records."""

from lattice.store import keys
from lattice.store.cluster import ensure_cluster_id
from lattice.store.errors import StoreError, StoreUnavailable, WatchLost
from lattice.store.etcd import Delete, DeletePrefix, Etcd, KeyValue, ModRevisionIs, Put, WatchEvent
from lattice.store.informer import Change, Informer
from lattice.store.presence import LeasedRecords

__all__ = [
    "Change",
    "Delete",
    "DeletePrefix",
    "Etcd",
    "Informer",
    "KeyValue",
    "LeasedRecords",
    "ModRevisionIs",
    "Put",
    "StoreError",
    "StoreUnavailable",
    "WatchEvent",
    "WatchLost",
    "ensure_cluster_id",
    "keys",
]
