"""A tiny OpenID Connect provider on loopback, for sign-in tests against real Open WebUI replicas.

Authorization-code flow only: discovery, /authorize (approves at once, as the configured user),
/token (client_secret_basic or client_secret_post, PKCE S256 checked when the login sent a
challenge), /jwks, /userinfo. ID tokens are RS256-signed with a key made per provider.
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import http.server
import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey


@dataclass
class Provider:
    client_id: str
    client_secret: str
    user: dict[str, Any]                     # claims of whoever signs in: sub, email, name, groups, roles, ...
    issuer: str = ""
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "test-1"}))
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    logins: int = 0                          # codes redeemed at /token

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def metadata(self) -> dict[str, Any]:
        return {"issuer": self.issuer, "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token", "jwks_uri": f"{self.issuer}/jwks",
                "userinfo_endpoint": f"{self.issuer}/userinfo", "response_types_supported": ["code"],
                "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"]}

    def token(self, form: dict[str, str], authorization: str) -> dict[str, Any] | None:
        """The token response for a code redeemed by this client, or None (invalid_grant)."""
        if authorization.startswith("Basic "):
            client_id, _, secret = base64.b64decode(authorization[6:]).decode().partition(":")
            client_id, secret = urllib.parse.unquote(client_id), urllib.parse.unquote(secret)
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        login = self.codes.pop(form.get("code", ""), None)
        if login is None or client_id != self.client_id or secret != self.client_secret:
            return None
        if login.get("redirect_uri") != form.get("redirect_uri", login.get("redirect_uri")):
            return None
        if "code_challenge" in login:
            verifier = form.get("code_verifier", "").encode()
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=").decode()
            if challenge != login["code_challenge"]:
                return None
        self.logins += 1
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": self.client_id, "iat": now, "exp": now + 300, **self.user}
        if "nonce" in login:
            claims["nonce"] = login["nonce"]
        id_token = jwt.encode({"alg": "RS256", "kid": "test-1"}, claims, self.key)
        return {"access_token": secrets.token_urlsafe(24), "token_type": "Bearer", "expires_in": 300,
                "id_token": id_token, "scope": login.get("scope", "openid")}


class _Handler(http.server.BaseHTTPRequestHandler):
    provider: Provider

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _json(self, body: Any, status: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urllib.parse.urlparse(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/.well-known/openid-configuration":
            self._json(self.provider.metadata())
        elif url.path == "/jwks":
            self._json({"keys": [self.provider.key.as_dict(private=False)]})
        elif url.path == "/userinfo":
            self._json(self.provider.user)
        elif url.path == "/authorize" and query.get("client_id") == self.provider.client_id \
                and query.get("response_type") == "code" and "redirect_uri" in query:
            code = secrets.token_urlsafe(16)
            self.provider.codes[code] = query
            back = {"code": code, **({"state": query["state"]} if "state" in query else {})}
            self.send_response(302)
            self.send_header("Location", f"{query['redirect_uri']}?{urllib.parse.urlencode(back)}")
            self.end_headers()
        else:
            self._json({"error": "invalid_request"}, 400)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        if urllib.parse.urlparse(self.path).path != "/token":
            return self._json({"error": "invalid_request"}, 400)
        response = self.provider.token(form, self.headers.get("Authorization", ""))
        self._json(response if response is not None else {"error": "invalid_grant"}, 200 if response else 400)


@contextlib.contextmanager
def oidc_provider(client_id: str, client_secret: str, user: dict[str, Any],
                  host: str = "127.0.0.1") -> Iterator[Provider]:
    """Serve a provider on `host` (a free port) until the block ends."""
    provider = Provider(client_id, client_secret, user)
    handler = type("Handler", (_Handler,), {"provider": provider})
    server = http.server.ThreadingHTTPServer((host, 0), handler)
    provider.issuer = f"http://{host}:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
