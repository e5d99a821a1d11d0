"""ltc cells / visualize / version / test output: pure text from results."""

from __future__ import annotations

import json

import click

from lattice.cli import messages
from lattice.client.box_info import CellState, CellUsage
from lattice.client.smoke import StepResult
from lattice.models import ActualLRP, ActualState, Capacity, CellPresence


def cell(cell_id: str, address: str, used_mb: int, apps: dict[str, int]) -> CellState:
    return CellState(CellPresence(cell_id, address, Capacity(1024, 2048, 10)),
                     CellUsage(used_mb, 0, sum(apps.values())), apps)


def actual(app: str, index: int, state: ActualState, cell_id: str = "") -> ActualLRP:
    return ActualLRP(app, index, f"g{index}", state, 0, cell_id=cell_id)


def test_cells_table_shows_capacity_free_and_instances() -> None:
    text = messages.cells_table([cell("cell-1", "127.0.0.2", 256, {"web": 2}),
                                 cell("cell-0", "127.0.0.1", 0, {})])
    lines = text.splitlines()
    assert lines[0].split() == ["Cell", "Address", "Memory", "MB", "Free", "MB", "Disk", "MB",
                                "Containers", "Instances"]
    assert lines[1].split() == ["cell-0", "127.0.0.1", "0/1024", "1024", "0/2048", "0/10", "0"]
    assert lines[2].split() == ["cell-1", "127.0.0.2", "256/1024", "768", "0/2048", "2/10", "2"]
    data = json.loads(messages.cells_json([cell("cell-1", "127.0.0.2", 256, {"web": 2})]))
    assert data[0]["free"] == {"memory_mb": 768, "disk_mb": 2048, "containers": 8}
    assert messages.cells_table([]) == "No cells."


def test_visualize_marks_each_instance_and_flags_a_missing_cell() -> None:
    cells = [cell("cell-0", "127.0.0.1", 0, {}), cell("cell-1", "127.0.0.2", 0, {})]
    actuals = [actual("web", 0, ActualState.RUNNING, "cell-0"),
               actual("web", 1, ActualState.CLAIMED, "cell-0"),
               actual("web", 2, ActualState.RUNNING, "cell-9"),
               actual("web", 3, ActualState.UNCLAIMED)]
    text = click.unstyle(messages.visualize(cells, actuals))
    rows = {line.split()[0]: line for line in text.splitlines()[1:]}
    assert rows["cell-0"].count(messages.MARK) == 2
    assert rows["cell-1"].split()[1] == messages.NONE
    assert messages.MISSING_CELL in rows["cell-9"]
    assert rows["unplaced"].count(messages.MARK) == 1
    coloured = messages.visualize(cells, actuals)
    assert click.style(messages.MARK, fg="green") in coloured
    assert click.style(messages.MARK, fg="yellow") in coloured
    data = json.loads(messages.visualize_json(cells, actuals))["cells"]
    assert data["cell-9"]["missing"] is True
    assert data["cell-0"]["missing"] is False
    assert len(data["cell-0"]["instances"]) == 2


def test_version_and_smoke_report() -> None:
    assert "0.1" in messages.version_lines("0.1", "0.2")
    assert "0.2" in messages.version_mismatch("0.1", "0.2")
    report = messages.smoke_failed([StepResult("create", True, "ok"),
                                    StepResult("reach its route", False, "HTTP 503")])
    assert "[FAIL] reach its route: HTTP 503" in report
    assert "failed at 'reach its route'" in report
