"""Password hashing: argon2id for new hashes, bcrypt verified for imported ones."""

from __future__ import annotations

import asyncio

import bcrypt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Passwords:
    """Hashes and verifies passwords off the event loop.

    Args:
        time_cost, memory_kib, parallelism: argon2id parameters; the defaults
            are OWASP's recommended minimum (t=2, 19 MiB, p=1).
    """

    def __init__(self, time_cost: int = 2, memory_kib: int = 19456, parallelism: int = 1) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )

    def hash_sync(self, password: str) -> str:
        return self._hasher.hash(password)

    async def hash(self, password: str) -> str:
        """An argon2id hash of ``password`` (computed in a worker thread)."""
        return await asyncio.to_thread(self._hasher.hash, password)

    def verify_sync(self, password: str, hashed: str) -> bool:
        if not hashed:
            return False
        if hashed.startswith(("$2a$", "$2b$", "$2y$")):
            try:
                return bcrypt.checkpw(password.encode()[:72], hashed.encode())
            except ValueError:
                return False
        try:
            return self._hasher.verify(hashed, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def verify(self, password: str, hashed: str) -> bool:
        """True when ``password`` matches ``hashed`` (argon2id or bcrypt)."""
        return await asyncio.to_thread(self.verify_sync, password, hashed)

    def needs_rehash(self, hashed: str) -> bool:
        """True for bcrypt hashes and argon2 hashes made with other parameters."""
        if hashed.startswith("$2"):
            return True
        try:
            return self._hasher.check_needs_rehash(hashed)
        except InvalidHashError:
            return True
