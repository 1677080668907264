"""A real OpenID Connect provider for tests, on 127.0.0.1: Authlib's authorization server
(authorization code flow with PKCE S256 and nonce, RS256-signed ID tokens) in a Flask app
served by Werkzeug in a thread.

Endpoints: ``/.well-known/openid-configuration`` (discovery), ``/jwks`` (the signing key),
``/authorize`` (a sign-in form: e-mail and password), ``/token``, ``/userinfo``.  Nothing in
it knows PipelineBI: it is what a company's identity provider does, small.

>>> provider = OIDCProvider(users={"ana@example.com": ("secret", "Ana", ["revops"])},
...                         redirect_uris=["http://127.0.0.1:8501/oauth2callback"])
>>> url = provider.start()
>>> import json, urllib.request
>>> json.load(urllib.request.urlopen(url + "/.well-known/openid-configuration"))["issuer"] == url
True
>>> provider.stop()
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from html import escape

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.models import ClientMixin
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from authlib.oidc.core.models import AuthorizationCodeMixin
from flask import Flask, jsonify, request
from joserfc.jwk import KeySet, RSAKey
from werkzeug.serving import make_server

from pg_helpers import free_port


@dataclass
class User:
    email: str
    password: str
    name: str
    groups: list[str] = field(default_factory=list)

    def get_user_id(self) -> str:
        return self.email


@dataclass
class Client(ClientMixin):
    client_id: str
    client_secret: str
    redirect_uris: list[str]

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope):
        return " ".join(s for s in (scope or "").split() if s in ("openid", "email", "profile", "groups"))

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret):
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method, endpoint):
        return method in ("client_secret_basic", "client_secret_post") if endpoint == "token" else True

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type == "authorization_code"


@dataclass
class Code(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    email: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope

    def get_nonce(self):
        return self.nonce

    def get_auth_time(self):
        return self.auth_time


class OIDCProvider:
    """An identity provider with the given users (e-mail → (password, name, groups)) and one
    confidential client. ``start()`` returns its issuer URL; ``stop()`` shuts it down."""

    def __init__(self, users: dict[str, tuple[str, str, list[str]]], redirect_uris: list[str],
                 client_id: str = "pipelinebi", client_secret: str | None = None, port: int | None = None):
        self.users = {e: User(e, p, n, list(g)) for e, (p, n, g) in users.items()}
        self.client = Client(client_id, client_secret or secrets.token_urlsafe(24), list(redirect_uris))
        self.port = port or free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key", "use": "sig", "alg": "RS256"}, private=True)
        self.codes: dict[str, Code] = {}
        self.tokens: dict[str, dict] = {}
        #: every e-mail address that signed in, in order (tests check the flow really ran)
        self.sign_ins: list[str] = []
        self.app = self._build()
        self._server = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ the app
    def _build(self) -> Flask:
        provider = self
        app = Flask("test-oidc-provider")
        app.config["OAUTH2_TOKEN_EXPIRES_IN"] = {"authorization_code": 3600}

        class CodeGrant(grants.AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

            def save_authorization_code(self, code, req):
                data = req.payload.data
                provider.codes[code] = Code(code, req.client.client_id, req.payload.redirect_uri, req.payload.scope,
                                            req.user.email, data.get("nonce"), data.get("code_challenge"),
                                            data.get("code_challenge_method"))

            def query_authorization_code(self, code, client):
                found = provider.codes.get(code)
                return found if found is not None and found.client_id == client.client_id else None

            def delete_authorization_code(self, authorization_code):
                provider.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code):
                return provider.users.get(authorization_code.email)

        class IdToken(OpenIDCode):
            def exists_nonce(self, nonce, req):
                return any(c.nonce == nonce for c in provider.codes.values())

            def resolve_client_private_key(self, client):
                return provider.key

            def get_client_algorithm(self, client):
                return "RS256"

            def get_client_claims(self, client):
                return {"iss": provider.issuer, "aud": [client.get_client_id()], "exp": int(time.time()) + 3600}

            def get_encode_header(self, client):
                return {"alg": "RS256", "kid": "test-key"}

            def generate_user_info(self, user, scope):
                return provider.user_info(user, scope)

        def query_client(client_id):
            return provider.client if client_id == provider.client.client_id else None

        def save_token(token, req):
            provider.tokens[token["access_token"]] = {"email": req.user.email, "scope": token.get("scope", "")}

        server = AuthorizationServer(app, query_client=query_client, save_token=save_token)
        server.register_grant(CodeGrant, [IdToken(require_nonce=True), CodeChallenge(required=True)])

        @app.get("/.well-known/openid-configuration")
        def discovery():
            i = provider.issuer
            return jsonify({
                "issuer": i, "authorization_endpoint": f"{i}/authorize", "token_endpoint": f"{i}/token",
                "userinfo_endpoint": f"{i}/userinfo", "jwks_uri": f"{i}/jwks",
                "response_types_supported": ["code"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"], "code_challenge_methods_supported": ["S256"],
                "scopes_supported": ["openid", "email", "profile", "groups"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "claims_supported": ["sub", "email", "email_verified", "name", "groups"],
            })

        @app.get("/jwks")
        def jwks():
            return jsonify(KeySet([provider.key]).as_dict(private=False))

        @app.route("/authorize", methods=["GET", "POST"])
        def authorize():
            if request.method == "GET":
                try:
                    server.get_consent_grant(end_user=None)
                except Exception as e:  # a bad request is shown, as a provider would
                    return f"<h1>Bad sign-in request</h1><p>{escape(str(e))}</p>", 400
                return provider.login_form(request.query_string.decode())
            email = (request.form.get("email") or "").strip().lower()
            user = provider.users.get(email)
            if user is None or not secrets.compare_digest(request.form.get("password") or "", user.password):
                return provider.login_form(request.query_string.decode(), "Wrong e-mail or password."), 401
            provider.sign_ins.append(email)
            try:
                grant = server.get_consent_grant(end_user=user)
            except Exception as e:
                return f"<h1>Bad sign-in request</h1><p>{escape(str(e))}</p>", 400
            return server.create_authorization_response(grant_user=user, grant=grant)

        @app.post("/token")
        def token():
            return server.create_token_response()

        @app.get("/userinfo")
        def userinfo():
            auth = request.headers.get("Authorization", "")
            held = provider.tokens.get(auth.removeprefix("Bearer ").strip())
            if held is None:
                return jsonify({"error": "invalid_token"}), 401
            return jsonify(dict(provider.user_info(provider.users[held["email"]], held["scope"])))

        return app

    def user_info(self, user: User, scope: str) -> UserInfo:
        info = UserInfo(sub=user.email, name=user.name)
        if "email" in scope:
            info["email"] = user.email
            info["email_verified"] = True
        info["groups"] = list(user.groups)
        return info

    @staticmethod
    def login_form(query: str, message: str = "") -> str:
        return (f"<!doctype html><title>Test identity provider</title><h1>Sign in to the test provider</h1>"
                f"<p style='color:#b00'>{escape(message)}</p>"
                f"<form method='post' action='/authorize?{escape(query)}'>"
                f"<label>E-mail <input name='email' type='email'></label>"
                f"<label>Password <input name='password' type='password'></label>"
                f"<button type='submit'>Sign in</button></form>")

    # ------------------------------------------------------------- serving
    def start(self) -> str:
        self._server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="oidc-provider", daemon=True)
        self._thread.start()
        return self.issuer

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
            self._server = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
