"""The test OIDC provider speaks the authorization-code flow as a relying party expects."""
from __future__ import annotations

import base64
import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from oidc_idp import oidc_provider

USER = {"sub": "u-42", "email": "ada@acme.test", "name": "Ada", "groups": ["research"], "roles": ["admin"]}
CALLBACK = "https://chat.example.com/oauth/oidc/login/callback"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.build_opener(_NoRedirect).open(url, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def _post(url: str, form: dict[str, str], headers: dict[str, str] | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode(), headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _authorize(idp, **extra: str) -> str:  # type: ignore[no-untyped-def]
    query = {"client_id": "fleet", "response_type": "code", "redirect_uri": CALLBACK, "scope": "openid email",
             "state": "st-1", "nonce": "n-1", **extra}
    status, headers, _ = _get(f"{idp.issuer}/authorize?{urllib.parse.urlencode(query)}")
    assert status == 302
    back = urllib.parse.urlparse(headers["Location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == CALLBACK
    params = dict(urllib.parse.parse_qsl(back.query))
    assert params["state"] == "st-1"
    return params["code"]


def test_a_code_becomes_an_id_token_signed_with_the_published_key() -> None:
    with oidc_provider("fleet", "s3cret", USER) as idp:
        status, _, body = _get(idp.discovery_url)
        metadata = json.loads(body)
        assert status == 200 and metadata["issuer"] == idp.issuer
        code = _authorize(idp)
        basic = base64.b64encode(b"fleet:s3cret").decode()
        status, token = _post(metadata["token_endpoint"], {"grant_type": "authorization_code", "code": code,
                                                           "redirect_uri": CALLBACK},
                              {"Authorization": f"Basic {basic}"})
        assert status == 200
        _, _, jwks = _get(metadata["jwks_uri"])
        claims = jwt.decode(token["id_token"], KeySet.import_key_set(json.loads(jwks))).claims
        assert {k: claims[k] for k in ("iss", "aud", "nonce", "sub", "email", "groups", "roles")} == {
            "iss": idp.issuer, "aud": "fleet", "nonce": "n-1", "sub": "u-42", "email": "ada@acme.test",
            "groups": ["research"], "roles": ["admin"]}
        assert idp.logins == 1


@pytest.mark.parametrize("form", [
    {"client_id": "fleet", "client_secret": "wrong"},
    {"client_id": "other", "client_secret": "s3cret"},
])
def test_a_wrong_client_gets_no_token(form: dict[str, str]) -> None:
    with oidc_provider("fleet", "s3cret", USER) as idp:
        code = _authorize(idp)
        status, body = _post(f"{idp.issuer}/token", {"grant_type": "authorization_code", "code": code, **form})
        assert (status, body) == (400, {"error": "invalid_grant"})


def test_a_code_is_redeemed_once_and_pkce_is_checked() -> None:
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    with oidc_provider("fleet", "s3cret", USER) as idp:
        code = _authorize(idp, code_challenge=challenge, code_challenge_method="S256")
        form = {"grant_type": "authorization_code", "code": code, "client_id": "fleet", "client_secret": "s3cret"}
        assert _post(f"{idp.issuer}/token", {**form, "code_verifier": "x" * 50})[0] == 400
        code = _authorize(idp, code_challenge=challenge, code_challenge_method="S256")
        form["code"] = code
        assert _post(f"{idp.issuer}/token", {**form, "code_verifier": verifier})[0] == 200
        assert _post(f"{idp.issuer}/token", {**form, "code_verifier": verifier})[0] == 400  # used
