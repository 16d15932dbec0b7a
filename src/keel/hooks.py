"""Hook chains: handlers around an operation, the default action last.

Each handler receives the event and may change it, stop the chain by not
calling ``await event.next()``, or run code before and after the rest::

    async def audit(e: RecordEvent) -> None:
        print("before", e.record)
        await e.next()
        print("after", e.record)

    app.on_record_create.bind(audit)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar


class Event:
    """Base of hook events; ``next`` runs the rest of the chain."""

    def __init__(self) -> None:
        self._chain: list[Callable[[Event], Awaitable[None]]] = []
        self._pos = 0

    async def next(self) -> None:
        """Run the next handler (the default action comes last)."""
        if self._pos < len(self._chain):
            handler = self._chain[self._pos]
            self._pos += 1
            await handler(self)


E = TypeVar("E", bound=Event)


class Hook(Generic[E]):
    """An ordered list of handlers for one kind of event."""

    def __init__(self) -> None:
        self._handlers: list[Callable[[E], Awaitable[None]]] = []

    def bind(self, handler: Callable[[E], Awaitable[None]]) -> None:
        """Add a handler; handlers run in the order they were bound."""
        self._handlers.append(handler)

    def unbind(self, handler: Callable[[E], Awaitable[None]]) -> None:
        self._handlers.remove(handler)

    async def trigger(self, event: E, default: Callable[[E], Awaitable[None]]) -> None:
        """Run the handlers, then ``default``, as one chain over ``event``."""
        if not self._handlers:
            await default(event)
            return
        event._chain = [*self._handlers, default]  # type: ignore[list-item]
        event._pos = 0
        await event.next()
