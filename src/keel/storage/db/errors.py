"""Storage-level errors.

Driver exceptions (``sqlite3``, ``asyncpg``) never leave ``keel.storage``; each
adapter translates them into this small hierarchy, which ``keel.core`` maps to
its own domain errors::

    DatabaseError
     ├── UniqueViolationError   a unique index rejected the write
     ├── IntegrityError         another constraint rejected the write
     ├── SchemaMismatchError    a table or column the statement names is gone
     ├── InvalidValueError      a bound value the engine cannot store (e.g. NUL)
     ├── StatementTimeoutError  the statement ran past its time budget
     └── DatabaseBusyError      the write lock could not be taken in time, or the
                                database could not be reached
"""

from __future__ import annotations


class DatabaseError(Exception):
    """Base class of every error raised by a ``Database`` adapter."""


class UniqueViolationError(DatabaseError):
    """A unique index rejected the write.

    Attributes:
        table: the table the index belongs to, when the driver tells it.
        columns: the indexed columns, when the driver tells them.
        index: the index (constraint) name, when the driver tells it.
    """

    def __init__(
        self,
        message: str,
        *,
        table: str = "",
        columns: tuple[str, ...] = (),
        index: str = "",
    ) -> None:
        super().__init__(message)
        self.table = table
        self.columns = columns
        self.index = index


class IntegrityError(DatabaseError):
    """A NOT NULL, CHECK or foreign-key constraint rejected the write."""


class SchemaMismatchError(DatabaseError):
    """A statement names a table or column that does not exist (any more)."""


class InvalidValueError(DatabaseError):
    """A bound value the engine refuses: NUL characters, out-of-range numbers…"""


class StatementTimeoutError(DatabaseError):
    """A statement ran past the time budget and was cancelled."""


class DatabaseBusyError(DatabaseError):
    """The write lock stayed taken by another process for too long, or the
    database could not be reached (a server restart, the network): try again."""
