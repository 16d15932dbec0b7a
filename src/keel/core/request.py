"""What a rule may look at: who asks, how, and with what."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.core.collection import Collection
    from keel.core.record import Record
    from keel.storage.db.database import DataVersion


#: Record operations an API key scope can grant.
ACTIONS = ("list", "view", "create", "update", "delete")


@dataclass(frozen=True, slots=True)
class Auth:
    """The authenticated caller, or nobody.

    Attributes:
        record, collection: the auth record acting, and its collection.
        scopes: for an API key, the ``<collection>:<action>`` pairs it grants
            (``*`` matches any collection, a bare ``*`` grants everything the
            creator has); ``None`` for a token or nobody.
        api_key: the id of the API key used, if any.
        system: Keel itself acting (internal writes), with superuser rights.
    """

    record: Record | None = None
    collection: Collection | None = None
    scopes: frozenset[str] | None = None
    api_key: str = ""
    system: bool = False
    #: False for impersonation tokens, which cannot be refreshed.
    refreshable: bool = True

    @property
    def is_superuser(self) -> bool:
        if self.system:
            return True
        return self.collection is not None and self.collection.name == "_superusers"

    @property
    def unrestricted(self) -> bool:
        """Not limited by API key scopes."""
        return self.scopes is None or "*" in self.scopes

    def allows(self, collection: Collection, action: str) -> bool:
        """Whether the key scopes (if any) cover ``action`` on ``collection``."""
        if self.unrestricted:
            return True
        assert self.scopes is not None
        return bool(
            {f"{collection.name}:{action}", f"{collection.id}:{action}", f"*:{action}"}
            & self.scopes
        )

    @property
    def id(self) -> str:
        return self.record.id if self.record is not None else ""


ANONYMOUS = Auth()
SYSTEM = Auth(system=True)


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """The request data API rules can refer to (``@request.*``).

    ``context`` is where the request came from: ``default``, ``batch``,
    ``realtime``, ``protectedFile``…

    ``data_version`` is not for rules: it is the database's data version
    read when this request began (see :meth:`App.refresh`), which reused
    results may be keyed by instead of reading it again. Where it is
    ``None``, engines with a version that needs no statement (SQLite) read
    it when needed; on the others nothing is reused.
    """

    auth: Auth = ANONYMOUS
    method: str = "GET"
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)
    context: str = "default"
    data_version: DataVersion | None = None


#: Keel's own writes (OTPs, MFA sessions, OAuth2 links, API keys, claims).
SYSTEM_INFO = RequestInfo(auth=SYSTEM)
