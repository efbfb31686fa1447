"""A light one-shot result for the blocking front.

``concurrent.futures.Future`` builds a Condition and an RLock for every
instance; a publisher in confirm mode makes one per message. A ``Waiter``
is four slots, and makes a ``threading.Event`` only when a thread has to
wait for a result that is not there yet. The I/O thread settles it; any
thread may wait on it.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

__all__ = ["Waiter"]

T = TypeVar("T")

_create_lock = threading.Lock()


class Waiter(Generic[T]):
    """One result or one exception, set once by the I/O thread."""

    __slots__ = ("_error", "_event", "_result", "settled")

    def __init__(self) -> None:
        #: Whether the outcome is there (what done() says, without a call;
        #: read-only).
        self.settled = False
        self._result: T | None = None
        self._error: BaseException | None = None
        self._event: threading.Event | None = None

    def done(self) -> bool:
        return self.settled

    def set_result(self, result: T) -> None:
        if self.settled:
            return
        self._result = result
        self.settled = True
        event = self._event  # read after _done is set: see result()
        if event is not None:
            event.set()

    def set_exception(self, error: BaseException) -> None:
        if self.settled:
            return
        self._error = error
        self.settled = True
        event = self._event
        if event is not None:
            event.set()

    def cancel(self) -> bool:
        """Give up waiting; a result that arrives later is dropped. False
        if the outcome was already there (call it with the connection lock
        held, which the I/O thread holds to settle waiters)."""
        if self.settled:
            return False
        self.set_exception(TimeoutError("cancelled"))
        return True

    def exception(self) -> BaseException | None:
        return self._error if self.settled else None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for the outcome; whether it is there."""
        if not self.settled:
            with _create_lock:
                if self._event is None:
                    self._event = threading.Event()
            # The setter stores _done before reading _event; we store _event
            # before reading _done: one of us sees the other.
            if not self.settled:
                self._event.wait(timeout)
        return self.settled

    def result(self, timeout: float | None = None) -> T:
        """The result, waiting up to ``timeout`` seconds for it.

        Raises:
            TimeoutError: not set within ``timeout``.
            BaseException: the exception that was set.
        """
        if not self.settled and not self.wait(timeout):
            raise TimeoutError(f"no result within {timeout} s")
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]  # set with the result, so a T
