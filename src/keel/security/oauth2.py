"""OAuth2 / OpenID Connect clients: the authorization URL, the code exchange
(with PKCE) and the user profile.

Providers are a generic OIDC one (``oidc``, ``oidc2``, ``oidc3``: URLs from
the configuration) and presets for GitHub and Google, whose URLs may still be
overridden. The HTTP work goes through httpx; the token request authenticates
the client with ``client_secret_post`` (RFC 6749 §2.3.1).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

TIMEOUT_SECONDS = 10.0


class OAuth2Error(Exception):
    """The provider refused the code, or answered with something unusable."""


@dataclass(frozen=True, slots=True)
class Preset:
    display_name: str
    auth_url: str = ""
    token_url: str = ""
    user_info_url: str = ""
    scopes: tuple[str, ...] = ("openid", "email", "profile")
    pkce: bool = True


PRESETS: dict[str, Preset] = {
    "oidc": Preset("OpenID Connect"),
    "oidc2": Preset("OpenID Connect (2)"),
    "oidc3": Preset("OpenID Connect (3)"),
    "github": Preset(
        "GitHub",
        "https://github.com/login/oauth/authorize",
        "https://github.com/login/oauth/access_token",
        "https://api.github.com/user",
        ("read:user", "user:email"),
    ),
    "google": Preset(
        "Google",
        "https://accounts.google.com/o/oauth2/v2/auth",
        "https://oauth2.googleapis.com/token",
        "https://openidconnect.googleapis.com/v1/userinfo",
    ),
}


@dataclass(frozen=True, slots=True)
class Provider:
    """One configured provider (a collection's ``oauth2.providers`` entry)."""

    name: str
    client_id: str
    client_secret: str
    auth_url: str
    token_url: str
    user_info_url: str
    display_name: str
    pkce: bool
    scopes: tuple[str, ...]

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Provider:
        preset = PRESETS[config["name"]]
        pkce = config.get("pkce")
        return cls(
            name=config["name"],
            client_id=config["clientId"],
            client_secret=config["clientSecret"],
            auth_url=config.get("authURL") or preset.auth_url,
            token_url=config.get("tokenURL") or preset.token_url,
            user_info_url=config.get("userInfoURL") or preset.user_info_url,
            display_name=config.get("displayName") or preset.display_name,
            pkce=preset.pkce if pkce is None else bool(pkce),
            scopes=preset.scopes,
        )


@dataclass(frozen=True, slots=True)
class AuthStart:
    """What a client needs to send the user to the provider."""

    state: str
    code_verifier: str
    code_challenge: str
    auth_url: str


def s256_challenge(verifier: str) -> str:
    """The PKCE ``S256`` code challenge of a verifier (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def start(provider: Provider) -> AuthStart:
    """A fresh state and PKCE pair, and the authorization URL.

    The URL ends with ``&redirect_uri=`` for the client to complete, as
    PocketBase's SDKs expect.
    """
    state = secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(48) if provider.pkce else ""
    challenge = s256_challenge(verifier) if verifier else ""
    params = {
        "client_id": provider.client_id,
        "response_type": "code",
        "scope": " ".join(provider.scopes),
        "state": state,
    }
    if challenge:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    sep = "&" if "?" in provider.auth_url else "?"
    url = f"{provider.auth_url}{sep}{urlencode(params)}&redirect_uri="
    return AuthStart(state, verifier, challenge, url)


@dataclass
class AuthUser:
    """The provider's view of the user, normalized."""

    id: str
    name: str = ""
    username: str = ""
    email: str = ""
    #: Whether the provider vouches for ``email``; unverified emails are dropped.
    email_verified: bool = False
    avatar_url: str = ""
    access_token: str = ""
    refresh_token: str = ""
    expiry: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


async def exchange(
    provider: Provider,
    code: str,
    code_verifier: str,
    redirect_url: str,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AuthUser:
    """Trade an authorization code for tokens, then fetch the user's profile.

    Raises:
        OAuth2Error: any failure on the provider's side or in its answers.
    """
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_url,
        "client_id": provider.client_id,
        "client_secret": provider.client_secret,
    }
    if code_verifier:
        form["code_verifier"] = code_verifier
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS, transport=transport) as client:
            answer = await client.post(
                provider.token_url, data=form, headers={"Accept": "application/json"}
            )
            answer.raise_for_status()
            token = answer.json()
            if not isinstance(token, dict) or not token.get("access_token"):
                raise OAuth2Error("the token response has no access_token")
            bearer = {
                "Authorization": f"Bearer {token['access_token']}",
                "Accept": "application/json",
            }
            response = await client.get(provider.user_info_url, headers=bearer)
            response.raise_for_status()
            raw = response.json()
            if not isinstance(raw, dict):
                raise OAuth2Error("the user info is not an object")
            emails: list[Any] = []
            if provider.name == "github":
                listed = await client.get("https://api.github.com/user/emails", headers=bearer)
                answer = listed.json() if listed.status_code == 200 else []
                emails = answer if isinstance(answer, list) else []
    except OAuth2Error:
        raise
    except (httpx.HTTPError, ValueError) as exc:  # transport, status, or not JSON
        raise OAuth2Error(str(exc) or type(exc).__name__) from exc
    user = _github_user(raw, emails) if provider.name == "github" else _oidc_user(raw)
    user.access_token = str(token.get("access_token", ""))
    user.refresh_token = str(token.get("refresh_token", ""))
    lifetime = token.get("expires_in")
    if isinstance(lifetime, int) and not isinstance(lifetime, bool) and 0 < lifetime < 10**9:
        user.expiry = (datetime.now(UTC) + timedelta(seconds=lifetime)).isoformat()
    if not user.id:
        raise OAuth2Error("the provider gave no user id")
    return user


def _oidc_user(raw: dict[str, Any]) -> AuthUser:
    verified = raw.get("email_verified")
    return AuthUser(
        id=str(raw.get("sub") or raw.get("id") or ""),
        name=str(raw.get("name") or ""),
        username=str(raw.get("preferred_username") or raw.get("nickname") or ""),
        email=str(raw.get("email") or ""),
        email_verified=verified is True or verified == "true",
        avatar_url=str(raw.get("picture") or ""),
        raw=raw,
    )


def _github_user(raw: dict[str, Any], emails: list[Any]) -> AuthUser:
    email, verified = "", False
    for entry in emails:
        if isinstance(entry, dict) and entry.get("primary") and entry.get("verified"):
            email, verified = str(entry.get("email") or ""), True
    return AuthUser(
        id=str(raw.get("id") or ""),
        name=str(raw.get("name") or ""),
        username=str(raw.get("login") or ""),
        email=email,
        email_verified=verified,
        avatar_url=str(raw.get("avatar_url") or ""),
        raw=raw,
    )
