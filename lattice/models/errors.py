"""Errors raised by the pure models.

    ModelError
    └── ValidationError   one or more fields are invalid; carries every problem at once
"""

from __future__ import annotations

from dataclasses import dataclass, field


class ModelError(Exception):
    """Base of every error the models raise."""


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass
class ValidationError(ModelError):
    """Every invalid field of one request, collected rather than stopping at the first."""

    errors: list[FieldError] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(str(e) for e in self.errors)


class Problems:
    """Accumulates field errors while a record is validated (Diego's ValidationError.Append)."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def add(self, field_name: str, message: str) -> None:
        self.errors.append(FieldError(field_name, message))

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationError(list(self.errors))
