"""What a rule may look at: who asks, how, and with what."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.core.collection import Collection
    from keel.core.record import Record


@dataclass(frozen=True, slots=True)
class Auth:
    """The authenticated caller, or nobody."""

    record: Record | None = None
    collection: Collection | None = None

    @property
    def is_superuser(self) -> bool:
        return self.collection is not None and self.collection.name == "_superusers"

    @property
    def id(self) -> str:
        return self.record.id if self.record is not None else ""


ANONYMOUS = Auth()


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """The request data API rules can refer to (``@request.*``).

    ``context`` is where the request came from: ``default``, ``batch``,
    ``realtime``, ``protectedFile``…
    """

    auth: Auth = ANONYMOUS
    method: str = "GET"
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)
    context: str = "default"
