"""Errors the API answers with: one HTTP status and one stable type code each.

    ApiError
    ├── InvalidJSON              400  the body is not JSON
    ├── InvalidRequest           400  one or more fields are invalid; lists every one
    ├── DesiredLRPNotFound       404
    ├── DesiredLRPAlreadyExists  409
    ├── ModificationConflict     409  a concurrent update won; retry
    ├── TaskNotFound             404
    ├── TaskGuidAlreadyExists    409
    ├── InvalidTaskState         409  e.g. deleting a task that has not completed
    ├── FunctionNotFound         404
    ├── FunctionAlreadyExists    409
    ├── ServiceUnavailable       503  etcd cannot be reached right now
    └── UnknownError             500  a bug; never the answer to bad input
"""

from __future__ import annotations

from typing import Any, ClassVar

from lattice.models import FieldError


class ApiError(Exception):
    status: ClassVar[int] = 500
    type: ClassVar[str] = "UnknownError"

    def __init__(self, message: str, fields: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or []

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.fields:
            body["fields"] = [{"field": f.field, "message": f.message} for f in self.fields]
        return {"error": body}


class InvalidJSON(ApiError):
    status = 400
    type = "InvalidJSON"


class InvalidRequest(ApiError):
    status = 400
    type = "InvalidRequest"


class DesiredLRPNotFound(ApiError):
    status = 404
    type = "DesiredLRPNotFound"


class DesiredLRPAlreadyExists(ApiError):
    status = 409
    type = "DesiredLRPAlreadyExists"


class ModificationConflict(ApiError):
    status = 409
    type = "ModificationConflict"


class UnknownError(ApiError):
    status = 500
    type = "UnknownError"


class ServiceUnavailable(ApiError):
    status = 503
    type = "ServiceUnavailable"


# -- tasks ------------------------------------------------------------------------------------


class TaskNotFound(ApiError):
    status = 404
    type = "TaskNotFound"


class TaskGuidAlreadyExists(ApiError):
    status = 409
    type = "TaskGuidAlreadyExists"


class InvalidTaskState(ApiError):
    status = 409
    type = "InvalidTaskState"


# -- functions --------------------------------------------------------------------------------


class FunctionNotFound(ApiError):
    status = 404
    type = "FunctionNotFound"


class FunctionAlreadyExists(ApiError):
    status = 409
    type = "FunctionAlreadyExists"
