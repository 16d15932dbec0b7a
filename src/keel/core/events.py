"""Hook events raised by the record actions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from keel.hooks import Event

if TYPE_CHECKING:
    from keel.core.collection import Collection
    from keel.core.record import Record
    from keel.core.request import RequestInfo
    from keel.storage.db.database import Executor


class RecordEvent(Event):
    """A record create, update or delete, inside its transaction.

    Attributes:
        collection: the record's collection.
        record: the record as it will be (or was, for delete) stored.
        request: who asked, and how.
        tx: the open transaction; handlers may run statements on it.
    """

    def __init__(
        self, collection: Collection, record: Record, request: RequestInfo, tx: Executor
    ) -> None:
        super().__init__()
        self.collection = collection
        self.record = record
        self.request = request
        self.tx = tx
