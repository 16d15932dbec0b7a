"""The ``oidc_provider`` fixture and ``authorize`` helper, on their own.

A full authorization code flow with PKCE against the real provider: sign in
through its login and consent pages, exchange the code for tokens with the
client's credentials (in the body and as HTTP Basic), read userinfo.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

import httpx
import pytest

from tests.oidc import OidcProvider, authorize, pkce_pair

pytestmark = pytest.mark.e2e

REDIRECT_URI = "http://127.0.0.1/oauth2-redirect"


def auth_url(provider: OidcProvider, redirect_uri: str, state: str, challenge: str) -> str:
    """An authorization code request with PKCE for the test client."""
    query = urlencode(
        {
            "client_id": provider.client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": "openid email profile",
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    return f"{provider.authorization_endpoint}?{query}"


def exchange(
    provider: OidcProvider, code: str, verifier: str, redirect_uri: str, *, basic: bool
) -> httpx.Response:
    """POST the code to the token endpoint, authenticating in the body or with HTTP Basic."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
    }
    if not basic:
        form.update(client_id=provider.client_id, client_secret=provider.client_secret)
    with httpx.Client(trust_env=False, timeout=10.0) as http:
        if basic:
            auth = httpx.BasicAuth(provider.client_id, provider.client_secret)
            return http.post(provider.token_endpoint, data=form, auth=auth)
        return http.post(provider.token_endpoint, data=form)


@pytest.mark.parametrize(
    ("login", "email", "verified", "basic"),
    [
        ("alice@example.com", "alice@example.com", True, False),
        ("bob-unverified", "bob-unverified@oidc.test", False, True),
    ],
)
def test_code_flow_with_pkce_reaches_userinfo(
    oidc_provider: OidcProvider, login: str, email: str, verified: bool, basic: bool
) -> None:
    """A login signs in, its code buys an access token, and userinfo returns its claims."""
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)

    redirect = authorize(auth_url(oidc_provider, REDIRECT_URI, state, challenge), login)
    assert (state, oidc_provider.issuer) == (redirect.get("state"), redirect.get("iss"))

    token = exchange(oidc_provider, redirect["code"], verifier, REDIRECT_URI, basic=basic)
    assert 200 == token.status_code, token.text
    tokens = token.json()
    assert "Bearer" == tokens["token_type"]
    assert 2 == tokens["id_token"].count(".")

    with httpx.Client(trust_env=False, timeout=10.0) as http:
        userinfo = http.get(
            oidc_provider.userinfo_endpoint,
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        )
    assert 200 == userinfo.status_code, userinfo.text
    claims = userinfo.json()
    expected = {
        "sub": login,
        "email": email,
        "email_verified": verified,
        "name": email.split("@")[0],
    }
    assert expected == {key: claims.get(key) for key in expected}
    assert claims["picture"].startswith(f"{oidc_provider.issuer}/")


def test_loopback_redirect_uri_matches_on_any_port(oidc_provider: OidcProvider) -> None:
    """A registered loopback redirect URI also allows the same URI with a port."""
    verifier, challenge = pkce_pair()
    redirect_uri = "http://127.0.0.1:8090/api/oauth2-redirect"

    redirect = authorize(auth_url(oidc_provider, redirect_uri, "s", challenge), "carol")
    token = exchange(oidc_provider, redirect["code"], verifier, redirect_uri, basic=False)

    assert 200 == token.status_code, token.text


def test_wrong_code_verifier_is_refused(oidc_provider: OidcProvider) -> None:
    """The token endpoint enforces PKCE: another verifier gets ``invalid_grant``."""
    _, challenge = pkce_pair()
    other_verifier, _ = pkce_pair()

    redirect = authorize(auth_url(oidc_provider, REDIRECT_URI, "s", challenge), "dave")
    token = exchange(oidc_provider, redirect["code"], other_verifier, REDIRECT_URI, basic=True)

    assert (400, "invalid_grant") == (token.status_code, token.json().get("error"))


def test_picture_is_served(oidc_provider: OidcProvider) -> None:
    """The picture URL in the claims is a PNG the provider serves."""
    with httpx.Client(trust_env=False, timeout=10.0) as http:
        response = http.get(f"{oidc_provider.issuer}/pictures/erin.png")

    assert (200, "image/png") == (response.status_code, response.headers["content-type"])
