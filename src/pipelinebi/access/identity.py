"""Who is asking, from what the app was given — no Streamlit here.

Three modes (setting ``PIPELINEBI_AUTH``):

- ``none`` (default): open access, for the embedded demo and one-person use; the app says so.
- ``header``: an authenticating proxy in front of the app puts the e-mail in a header
  (``PIPELINEBI_AUTH_HEADER``, default ``X-Forwarded-Email``; groups, optional, in
  ``PIPELINEBI_AUTH_GROUPS_HEADER``).  Accepted only from ``PIPELINEBI_TRUSTED_PROXIES``
  (addresses or networks): from anywhere else the header could be typed by anyone.
- ``oidc``: Streamlit's ``st.login`` (Authlib underneath) signs the user in with the
  company's OpenID Connect provider; the app passes ``st.user``'s claims here.

>>> from pipelinebi.settings import Settings
>>> s = Settings(auth="header", trusted_proxies=("10.0.0.0/8",))
>>> from_header({"x-forwarded-email": "Ana@Example.com"}, "10.1.2.3", s).email
'ana@example.com'
>>> from_header({"x-forwarded-email": "ana@example.com"}, "192.0.2.7", s)
Traceback (most recent call last):
...
pipelinebi.errors.AccessError: the sign-in header came from 192.0.2.7, which is not a trusted proxy (only requests through the proxies in PIPELINEBI_TRUSTED_PROXIES are accepted)
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Mapping

from ..errors import AccessError, Problem


@dataclass(frozen=True)
class Identity:
    """A signed-in person: e-mail (lower case), groups, and how we know."""

    email: str
    groups: tuple[str, ...] = ()
    source: str = "none"  # none | header | oidc | cli
    name: str | None = None


def _lower_keys(headers: Mapping[str, Any]) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in (headers or {}).items()}


def _trusted(ip: str | None, proxies: tuple[str, ...]) -> bool:
    if not ip:
        return False
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    for p in proxies:
        try:
            if address in ipaddress.ip_network(p, strict=False):
                return True
        except ValueError:
            continue
    return False


def _email(value: str, where: str) -> str:
    email = (value or "").strip().lower()
    if "@" not in email or len(email) > 320 or any(c.isspace() or ord(c) < 32 for c in email):
        raise AccessError(Problem(f"{where} does not hold an e-mail address", hint="check the proxy configuration"))
    return email


def from_header(headers: Mapping[str, Any], client_ip: str | None, settings) -> Identity:
    """The person a trusted proxy vouches for (``auth: header``)."""
    if not _trusted(client_ip, tuple(settings.trusted_proxies)):
        raise AccessError(Problem(f"the sign-in header came from {client_ip or 'an unknown address'}, "
                                  "which is not a trusted proxy",
                                  hint="only requests through the proxies in PIPELINEBI_TRUSTED_PROXIES are accepted"))
    h = _lower_keys(headers)
    name = settings.auth_header.lower()
    if not h.get(name):
        raise AccessError(Problem(f"no {settings.auth_header} header: the proxy did not sign this request in",
                                  hint="sign in through the company's proxy"))
    groups: tuple[str, ...] = ()
    if settings.auth_groups_header:
        raw = h.get(settings.auth_groups_header.lower(), "")
        groups = tuple(g.strip() for g in raw.split(",") if g.strip())
    return Identity(_email(h[name], f"the {settings.auth_header} header"), groups, "header")


def from_claims(claims: Mapping[str, Any], settings) -> Identity:
    """The person an OpenID Connect provider signed in (``auth: oidc``, ``st.user``'s claims)."""
    if not claims or not claims.get("is_logged_in", True):
        raise AccessError(Problem("not signed in", hint="sign in with your company account"))
    if claims.get("email_verified") is False:
        raise AccessError(Problem("the identity provider has not verified this e-mail address"))
    raw = claims.get(settings.oidc_groups_claim) or ()
    groups = tuple(str(g) for g in (raw if isinstance(raw, (list, tuple)) else [raw]))
    return Identity(_email(str(claims.get("email") or ""), "the sign-in token"), groups, "oidc",
                    name=str(claims["name"]) if claims.get("name") else None)
