"""Signed tokens: kept verifications still expire, and never cross keys."""

from __future__ import annotations

import time

import jwt
import pytest

from keel.security import token

KEY = "k" * 80


def test_a_kept_token_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    """A token verified once is refused once the clock passes its ``exp``."""
    signed = token.issue({"id": "a"}, KEY, 60)
    exp = token.verify(signed, KEY)["exp"]
    monkeypatch.setattr(token.time, "time", lambda: exp - 0.5)
    assert "a" == token.verify(signed, KEY)["id"]
    monkeypatch.setattr(token.time, "time", lambda: float(exp))
    with pytest.raises(token.TokenError):
        token.verify(signed, KEY)


def test_a_kept_token_does_not_verify_under_another_key() -> None:
    """The signature check is kept per key: another key (a renewed tokenKey) fails."""
    signed = token.issue({"id": "a"}, KEY, 60)
    token.verify(signed, KEY)
    with pytest.raises(token.TokenError):
        token.verify(signed, KEY + "x")
    with pytest.raises(token.TokenError):
        token.verify(signed, KEY + "x")  # failures are not kept as successes either


def test_not_yet_valid_tokens_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """``nbf`` and ``iat`` in the future are refused, also for a token verified before."""
    now = int(time.time())
    for claim in ("nbf", "iat"):
        early = jwt.encode({"id": "a", "exp": now + 60, claim: now + 30}, KEY, "HS256")
        with pytest.raises(token.TokenError):
            token.verify(early, KEY)
        valid = jwt.encode({"id": "a", "exp": now + 60, claim: now - 30}, KEY, "HS256")
        assert "a" == token.verify(valid, KEY)["id"]
        monkeypatch.setattr(token.time, "time", lambda: now - 31.0)
        with pytest.raises(token.TokenError):
            token.verify(valid, KEY)  # kept, and checked against the clock again
        monkeypatch.undo()


def test_callers_get_their_own_claims() -> None:
    """Changing the returned claims does not change what the next caller sees."""
    signed = token.issue({"id": "a"}, KEY, 60)
    token.verify(signed, KEY)["id"] = "b"
    token.unverified_claims(signed)["id"] = "c"
    assert "a" == token.verify(signed, KEY)["id"]
    assert "a" == token.unverified_claims(signed)["id"]


def test_long_tokens_are_not_kept() -> None:
    """Tokens longer than any Keel issues are checked every time and never kept."""
    forged = jwt.encode(
        {"id": "a", "exp": int(time.time()) + 60, "pad": "x" * 4000}, "o" * 64, "HS256"
    )
    signed = token.issue({"id": "a", "pad": "x" * 4000}, KEY, 60)
    kept = token._kept_unverified_claims.cache_info().currsize
    for _ in range(3):
        assert "a" == token.unverified_claims(forged)["id"]
        with pytest.raises(token.TokenError):
            token.verify(forged, KEY)
        assert "a" == token.verify(signed, KEY)["id"]
    assert kept == token._kept_unverified_claims.cache_info().currsize
