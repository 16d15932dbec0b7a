"""Signed tokens (JWT, HS256 only).

A token is signed with a key made of two secrets: one per collection and one
per record (its ``tokenKey``), so changing either invalidates the token.

Decoding a token and checking its signature are pure functions of the token
(and the key), and cost tens of microseconds each in PyJWT; a client sends the
same token with every request, so both results are kept for the most recent
tokens. Only the expiry, which moves with the clock, is checked every time.
"""

from __future__ import annotations

import secrets
import time
from functools import lru_cache
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


#: Tokens whose decoding and signature check are kept (per process).
KEPT_TOKENS = 4096
#: The longest token kept. Keel's are a few hundred characters; anyone can
#: send a long one that decodes (and fails its check) to fill memory.
KEPT_TOKEN_LENGTH = 2048


def unverified_claims(token: str) -> dict[str, Any]:
    """The payload without checking the signature: only to find the signing key.

    Raises:
        TokenError: not a JWT.
    """
    if len(token) > KEPT_TOKEN_LENGTH:
        return _unverified_claims(token)
    return dict(_kept_unverified_claims(token))


def _unverified_claims(token: str) -> dict[str, Any]:
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


_kept_unverified_claims = lru_cache(maxsize=KEPT_TOKENS)(_unverified_claims)


def verify(token: str, key: str) -> dict[str, Any]:
    """The payload of a token signed with ``key`` and not expired.

    Raises:
        TokenError: bad signature, wrong algorithm, or expired.
    """
    if len(token) > KEPT_TOKEN_LENGTH:
        claims = _signed_claims(token, key)
    else:
        claims = _kept_signed_claims(token, key)
    # The time checks PyJWT made when the token was first seen, repeated as
    # the clock moves (PyJWT had already found these claims to be integers).
    now = time.time()
    if int(claims["exp"]) <= now:
        raise TokenError("Signature has expired")
    if any(name in claims and int(claims[name]) > now for name in ("nbf", "iat")):
        raise TokenError("The token is not yet valid")
    return dict(claims)


def _signed_claims(token: str, key: str) -> dict[str, Any]:
    """The payload of a token signed with ``key`` (its times valid when first checked).

    Failures are not kept: a token that fails is checked again on every call.
    """
    try:
        claims: dict[str, Any] = jwt.decode(
            token, key, algorithms=[ALGORITHM], options={"require": ["exp"]}
        )
    except jwt.PyJWTError as exc:
        raise TokenError(str(exc)) from exc
    return claims


_kept_signed_claims = lru_cache(maxsize=KEPT_TOKENS)(_signed_claims)
