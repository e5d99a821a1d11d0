"""The etcd key layout: every key the box writes is built here and nowhere else.

    /lattice/v1/desired/scheduling/<process_guid>          SchedulingInfo (small, hot)
    /lattice/v1/desired/run/<process_guid>                 RunInfo (large, read at start)
    /lattice/v1/actual/<process_guid>/<index>              ActualLRP
    /lattice/v1/cells/<cell_id>                            CellPresence      (leased)
    /lattice/v1/assignments/<cell_id>/<process_guid>/<index>   Assignment
    /lattice/v1/services/<name>/<instance_id>              ServiceRecord     (leased)
    /lattice/v1/cluster_id                                 this box's id, labels its containers
    /lattice/v1/brain/leader                               the leading brain's id (leased)
    /lattice/v1/tasks/<task_guid>                          Task
    /lattice/v1/task_assignments/<cell_id>/<task_guid>     TaskAssignment (with the claim)
    /lattice/v1/activity/<process_guid>/<router_id>        Activity (router's lease)
    /lattice/v1/cold_starts/<process_guid>                 ColdStarts
    /lattice/v1/metrics/<process_guid>/<index>             InstanceMetrics   (cell's lease)
    /lattice/v1/route_claims_version                       bumped by every write that claims a route
"""

from __future__ import annotations

ROOT = "/lattice/v1/"
SCHEDULING = ROOT + "desired/scheduling/"
RUN = ROOT + "desired/run/"
ACTUAL = ROOT + "actual/"
CELLS = ROOT + "cells/"
ASSIGNMENTS = ROOT + "assignments/"
SERVICES = ROOT + "services/"
CLUSTER_ID = ROOT + "cluster_id"
# Held under a lease by the brain that runs the controllers (brain/leader.py).
BRAIN_LEADER = ROOT + "brain/leader"
TASKS = ROOT + "tasks/"
TASK_ASSIGNMENTS = ROOT + "task_assignments/"
FUNCTIONS = ROOT + "functions/"
# Raw bytes, apart from the task record, which every task informer reads on every change.
TASK_IO = ROOT + "task_io/"
# Scale to zero: requests seen per app by each router, and the cold starts they waited for.
ACTIVITY = ROOT + "activity/"
COLD_STARTS = ROOT + "cold_starts/"
# Container samples, under the writing cell's metrics lease (cell/metrics.py).
METRICS = ROOT + "metrics/"
# Serializes the writes that claim routes, cluster-wide (brain/route_claims.py): each one that
# adds or changes an app's routes, or creates a function (its host name), compares this key's
# mod revision with the one it read before checking the route owners it read from etcd, and
# bumps the key in the same transaction. Two such writes can therefore not both pass a check
# made on owners that lack the other. Deletes free routes and need not bump it.
ROUTE_CLAIMS_VERSION = ROOT + "route_claims_version"


def scheduling(process_guid: str) -> str:
    return SCHEDULING + process_guid


def run(process_guid: str) -> str:
    return RUN + process_guid


def actual_prefix(process_guid: str) -> str:
    return f"{ACTUAL}{process_guid}/"


def actual(process_guid: str, index: int) -> str:
    return f"{ACTUAL}{process_guid}/{index}"


def cell(cell_id: str) -> str:
    return CELLS + cell_id


def assignments_of(cell_id: str) -> str:
    return f"{ASSIGNMENTS}{cell_id}/"


def assignment(cell_id: str, process_guid: str, index: int) -> str:
    return f"{ASSIGNMENTS}{cell_id}/{process_guid}/{index}"


def service(name: str, instance_id: str) -> str:
    return f"{SERVICES}{name}/{instance_id}"


def parse_actual(key: str) -> tuple[str, int]:
    """(process_guid, index) of an actual key."""
    guid, _, index = key[len(ACTUAL):].rpartition("/")
    return guid, int(index)


def parse_assignment(key: str) -> tuple[str, str, int]:
    """(cell_id, process_guid, index) of an assignment key."""
    cell_id, guid, index = key[len(ASSIGNMENTS):].split("/")
    return cell_id, guid, int(index)


def task(task_guid: str) -> str:
    return TASKS + task_guid


def task_assignments_of(cell_id: str) -> str:
    return f"{TASK_ASSIGNMENTS}{cell_id}/"


def task_assignment(cell_id: str, task_guid: str) -> str:
    return f"{TASK_ASSIGNMENTS}{cell_id}/{task_guid}"


def parse_task_assignment(key: str) -> tuple[str, str]:
    """(cell_id, task_guid) of a task assignment key."""
    cell_id, _, guid = key[len(TASK_ASSIGNMENTS):].partition("/")
    return cell_id, guid


def metrics_prefix(process_guid: str) -> str:
    return f"{METRICS}{process_guid}/"


def metrics(process_guid: str, index: int) -> str:
    return f"{METRICS}{process_guid}/{index}"


def activity(process_guid: str, router_id: str) -> str:
    return f"{ACTIVITY}{process_guid}/{router_id}"


def parse_activity(key: str) -> tuple[str, str]:
    """(process_guid, router_id) of an activity key."""
    guid, _, router_id = key[len(ACTIVITY):].partition("/")
    return guid, router_id


def cold_starts(process_guid: str) -> str:
    return COLD_STARTS + process_guid


def function(name: str) -> str:
    return FUNCTIONS + name


def task_stdin(task_guid: str) -> str:
    return f"{TASK_IO}{task_guid}/stdin"


def task_stdout(task_guid: str) -> str:
    return f"{TASK_IO}{task_guid}/stdout"


def task_stderr(task_guid: str) -> str:
    return f"{TASK_IO}{task_guid}/stderr"
