"""Splitting writes under etcd's limit on one transaction (store/batches.py)."""

from __future__ import annotations

import asyncio

import pytest

from lattice.store import MAX_TXN_OPS, TXN_BATCH, Etcd, ModRevisionIs, Put, TxnTooLarge, batches


def test_batches_keep_order_and_cover_everything_once() -> None:
    items = list(range(250))
    split = list(batches(items))
    assert [len(b) for b in split] == [100, 100, 50]
    assert [i for b in split for i in b] == items


def test_exact_multiples_and_small_inputs() -> None:
    assert [list(b) for b in batches([1, 2, 3, 4], 2)] == [[1, 2], [3, 4]]
    assert [list(b) for b in batches([1], 5)] == [[1]]
    assert list(batches([], 5)) == []


def test_a_batch_size_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        list(batches([1], 0))


def test_a_batch_and_the_fixed_operations_of_a_create_fit_in_one_transaction() -> None:
    # create_desired puts the desired record's two keys beside a batch of instances.
    assert TXN_BATCH + 2 <= MAX_TXN_OPS


def test_a_transaction_past_the_limit_is_refused_before_it_is_sent() -> None:
    # Nothing listens on port 1: the check must come before any connection is tried.
    etcd = Etcd("127.0.0.1:1")
    puts = [Put(f"/k/{i}", b"") for i in range(MAX_TXN_OPS + 1)]
    with pytest.raises(TxnTooLarge, match="at most 128"):
        asyncio.run(etcd.txn([], puts))
    compares = [ModRevisionIs(f"/k/{i}", 0) for i in range(MAX_TXN_OPS + 1)]
    with pytest.raises(TxnTooLarge, match="129 compares"):
        asyncio.run(etcd.txn(compares, []))
