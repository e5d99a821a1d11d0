"""Pure types of the scheduler, their validation and their state rules. No I/O here."""

from lattice.models.actual import ActualLRP, ActualState, InvalidTransition, PortMapping
from lattice.models.cell import Assignment, Capacity, CellPresence, ServiceRecord
from lattice.models.desired import (
    DesiredLRP,
    DesiredLRPUpdate,
    ModificationTag,
    PortMonitor,
    Route,
    RunInfo,
    SchedulingInfo,
    parse_desired_lrp,
    parse_desired_lrp_update,
)
from lattice.models.errors import FieldError, ModelError, ValidationError
from lattice.models.restart_policy import DEFAULT_RESTART_POLICY, RestartPolicy
from lattice.models.task import (
    InvalidTaskTransition,
    Task,
    TaskDefinition,
    TaskState,
    parse_task,
)

__all__ = [
    "DEFAULT_RESTART_POLICY",
    "ActualLRP",
    "ActualState",
    "Assignment",
    "Capacity",
    "CellPresence",
    "DesiredLRP",
    "DesiredLRPUpdate",
    "FieldError",
    "InvalidTaskTransition",
    "InvalidTransition",
    "ModelError",
    "ModificationTag",
    "PortMapping",
    "PortMonitor",
    "RestartPolicy",
    "Route",
    "RunInfo",
    "SchedulingInfo",
    "ServiceRecord",
    "Task",
    "TaskDefinition",
    "TaskState",
    "ValidationError",
    "parse_desired_lrp",
    "parse_desired_lrp_update",
    "parse_task",
]
