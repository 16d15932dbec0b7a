"""Signed tokens (JWT, HS256 only).

A token is signed with a key made of two secrets: one per collection and one
per record (its ``tokenKey``), so changing either invalidates the token.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import jwt

ALGORITHM = "HS256"


class TokenError(Exception):
    """The token is malformed, expired, or signed with another key."""


def random_secret(length: int = 50) -> str:
    return secrets.token_urlsafe(length)[:length]


def issue(claims: dict[str, Any], key: str, duration_seconds: int) -> str:
    payload = dict(claims)
    payload["exp"] = int(time.time()) + int(duration_seconds)
    return jwt.encode(payload, key, algorithm=ALGORITHM)


def unverified_claims(token: str) -> dict[str, Any]:
    """The payload without checking the signature: only to find the signing key.

    Raises:
        TokenError: not a JWT.
    """
    try:
        claims: dict[str, Any] = jwt.decode(
            token, options={"verify_signature": False}, algorithms=[ALGORITHM]
        )
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise TokenError(str(exc)) from exc
    if header.get("alg") != ALGORITHM:
        raise TokenError("unsupported algorithm")
    return claims


def verify(token: str, key: str) -> dict[str, Any]:
    """The payload of a token signed with ``key`` and not expired.

    Raises:
        TokenError: bad signature, wrong algorithm, or expired.
    """
    try:
        claims: dict[str, Any] = jwt.decode(
            token, key, algorithms=[ALGORITHM], options={"require": ["exp"]}
        )
    except jwt.PyJWTError as exc:
        raise TokenError(str(exc)) from exc
    return claims
