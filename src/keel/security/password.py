"""Password hashing: argon2id for new hashes, bcrypt verified for imported ones."""

from __future__ import annotations

import bcrypt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher()


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` with the library's default cost."""
    return _HASHER.hash(password)


def verify_password(password: str, hashed: str) -> bool:
    """True when ``password`` matches ``hashed`` (argon2id or bcrypt)."""
    if not hashed:
        return False
    if hashed.startswith(("$2a$", "$2b$", "$2y$")):
        try:
            return bcrypt.checkpw(password.encode()[:72], hashed.encode())
        except ValueError:
            return False
    try:
        return _HASHER.verify(hashed, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(hashed: str) -> bool:
    """True for bcrypt hashes and argon2 hashes made with weaker parameters."""
    if hashed.startswith("$2"):
        return True
    try:
        return _HASHER.check_needs_rehash(hashed)
    except InvalidHashError:
        return True
