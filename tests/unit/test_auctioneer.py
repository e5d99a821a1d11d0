"""Placement by Diego's scoring: spread, fit, and an honest error when nothing fits."""

from __future__ import annotations

from lattice.brain.auctioneer import INSUFFICIENT_RESOURCES, NO_CELLS, CellLoad, Work, auction


def cell(cell_id: str, memory: int = 1024, disk: int = 1024, containers: int = 10) -> CellLoad:
    return CellLoad(cell_id, memory, disk, containers)


def test_instances_of_one_app_spread_across_cells() -> None:
    cells = [cell("a"), cell("b"), cell("c")]
    work = [Work("web", i, 64, 0) for i in range(3)]
    result = auction(cells, work)
    assert sorted(result.placed.values()) == ["a", "b", "c"]


def test_the_emptier_cell_wins() -> None:
    busy = cell("a")
    busy.used_memory_mb = 900
    result = auction([busy, cell("b")], [Work("web", 0, 64, 0)])
    assert result.placed == {Work("web", 0, 64, 0): "b"}


def test_an_instance_goes_only_where_it_fits() -> None:
    result = auction([cell("small", memory=100), cell("big", memory=1000)], [Work("w", 0, 500, 0)])
    assert list(result.placed.values()) == ["big"]


def test_nothing_fits() -> None:
    result = auction([cell("a", memory=100)], [Work("w", 0, 500, 0)])
    assert result.failed == {Work("w", 0, 500, 0): INSUFFICIENT_RESOURCES}
    assert auction([], [Work("w", 0, 1, 0)]).failed == {Work("w", 0, 1, 0): NO_CELLS}


def test_container_slots_are_a_limit() -> None:
    result = auction([cell("a", containers=2)], [Work("w", i, 0, 0) for i in range(3)])
    assert len(result.placed) == 2
    assert len(result.failed) == 1


def test_placement_counts_earlier_placements_in_the_same_auction() -> None:
    a = cell("a", memory=300)
    result = auction([a], [Work("w", i, 100, 0) for i in range(4)])
    assert len(result.placed) == 3
    assert a.used_memory_mb == 300
