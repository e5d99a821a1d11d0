"""Pure types of the scheduler, their validation and their state rules. No I/O here.

Each name below is imported from its module on first use (PEP 562): `ltc create` needs the
desired and actual LRPs only, and importing the cell and task models with them would cost
every `ltc` start a few milliseconds of dataclass set-up (tests/unit/test_ltc_imports.py).
`from lattice.models import X` works as before; mypy reads the imports under TYPE_CHECKING.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lattice.lazy_names import lazy_getattr

if TYPE_CHECKING:
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

_NAMES_BY_MODULE = {
    "actual": ["ActualLRP", "ActualState", "InvalidTransition", "PortMapping"],
    "cell": ["Assignment", "Capacity", "CellPresence", "ServiceRecord"],
    "desired": ["DesiredLRP", "DesiredLRPUpdate", "ModificationTag", "PortMonitor", "Route",
                "RunInfo", "SchedulingInfo", "parse_desired_lrp", "parse_desired_lrp_update"],
    "errors": ["FieldError", "ModelError", "ValidationError"],
    "restart_policy": ["DEFAULT_RESTART_POLICY", "RestartPolicy"],
    "task": ["InvalidTaskTransition", "Task", "TaskDefinition", "TaskState", "parse_task"],
}
_MODULE_OF = {name: module for module, names in _NAMES_BY_MODULE.items() for name in names}

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


__getattr__ = lazy_getattr(__name__, _MODULE_OF)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
