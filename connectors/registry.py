"""Connector registry: service-task operations by name, called with an idempotency key.

Each operation is a small callable ``(params, key) -> JSON-able result``. The engine only sees
the registry as a :data:`engine.services.ServiceHandler`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from engine.services import PermanentServiceError
from engine.validation import OperationInfo

Operation = Callable[[Mapping[str, Any], str], Any]


class UnknownOperationError(PermanentServiceError):
    pass


class ConnectorRegistry:
    """Operations by name (``notify.status``, ``payment.create`` …)."""

    def __init__(self) -> None:
        self._operations: dict[str, Operation] = {}
        self._info: dict[str, OperationInfo] = {}

    def register(self, name: str, operation: Operation, *, description: str = "",
                 required: tuple[str, ...] = (), optional: tuple[str, ...] = ()) -> None:
        """Add an operation with the parameters a service task gives it (``optional`` may hold
        ``"*"``: any other parameter is passed on, e.g. the fields of an inter-agency request)."""
        if name in self._operations:
            raise ValueError(f"operation {name!r} is registered twice")
        self._operations[name] = operation
        self._info[name] = OperationInfo(name, description, required, optional)

    def describe(self) -> dict[str, OperationInfo]:
        """What the designer offers and the validator checks: each operation and its parameters."""
        return dict(sorted(self._info.items()))

    def names(self) -> list[str]:
        return sorted(self._operations)

    def __contains__(self, name: object) -> bool:
        return name in self._operations

    def __call__(self, operation: str, params: Mapping[str, Any], key: str) -> Any:
        try:
            fn = self._operations[operation]
        except KeyError:
            raise UnknownOperationError(f"no connector operation {operation!r}") from None
        return fn(params, key)
