"""The set of executions cancelled while this process runs, fed by `execution.cancelled`."""

from __future__ import annotations

from collections import OrderedDict

from shared.errors import PermanentError


class ExecutionCancelledError(PermanentError):
    """The execution was cancelled; no further external call is made for it."""


class CancelledSet:
    """A bounded memory of cancelled execution ids, checked before every external call."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity

    def add(self, execution_id: str) -> None:
        self._ids[execution_id] = None
        self._ids.move_to_end(execution_id)
        while len(self._ids) > self._capacity:
            self._ids.popitem(last=False)

    def __contains__(self, execution_id: object) -> bool:
        return execution_id in self._ids

    def check(self, execution_id: str) -> None:
        """Raise if the execution was cancelled."""
        if execution_id in self._ids:
            raise ExecutionCancelledError()
