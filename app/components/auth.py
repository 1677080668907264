"""Who is asking, once per script run, and what they may see (``PIPELINEBI_AUTH``).

* ``none`` (the embedded demo): open access; the sidebar says so in a warning.
* ``header``: an authenticating proxy vouches for the person in ``PIPELINEBI_AUTH_HEADER``
  (default ``X-Forwarded-Email``) — believed only when the request's TCP peer is one of
  ``PIPELINEBI_TRUSTED_PROXIES``. The peer is the WebSocket's remote address as Streamlit
  records it (``pipelinebi serve`` stops the web server from replacing it with an
  ``X-Forwarded-For`` value, see :mod:`pipelinebi.serve`).
* ``oidc``: Streamlit's native sign-in (``st.login``, Authlib underneath) against the
  company's OpenID Connect provider, configured in the ``[auth]`` section of the secrets file
  ``PIPELINEBI_AUTH_SECRETS`` names; the claims of ``st.user`` say who it is.

The person's row scope (:mod:`pipelinebi.access`) is handed to :mod:`components.data`, which
puts it on every query. Whoever cannot be identified, or has no role, gets a page that says
who they are, why they see nothing and what to do — and no data.

>>> from pipelinebi.compiler.query import RowScope
>>> Viewer("header", "ava@x.com", RowScope(who="Ava Chen (rep)", conditions=("x = 1",)), "your deals").label
'Ava Chen (rep) — your deals'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from pipelinebi.access import OPEN_SCOPE, load_access, scope_of
from pipelinebi.access.identity import Identity, from_claims, from_header
from pipelinebi.access.policy import POLICY_FILE
from pipelinebi.access.scoped import scope_summary
from pipelinebi.compiler.query import RowScope
from pipelinebi.errors import AccessError, PipelineBIError, Problem
from pipelinebi.formatting import md_escape

from . import data, ui

OPEN_NOTICE = "Access is open: everyone who can reach this app sees every deal"


@dataclass(frozen=True)
class Viewer:
    """The person of this script run: how they were identified, their scope, in words."""

    mode: str  # none | header | oidc
    email: str | None
    scope: RowScope
    summary: str  # "your deals", "team APAC", "every deal"
    policy_file: bool = True  # False: no semantic/access.yml, every signed-in person sees everything

    @property
    def label(self) -> str:
        return f"{self.scope.who} — {self.summary}"


class NotSignedIn(Exception):
    """``auth: oidc`` and nobody has signed in in this browser yet."""


# ------------------------------------------------------------------ policy
def _access_stamp(semantic_dir: Path) -> int:
    try:
        return (semantic_dir / POLICY_FILE).stat().st_mtime_ns
    except FileNotFoundError:
        return 0


@st.cache_resource(show_spinner=False, max_entries=4)
def _policy(semantic_dir: str, semantic_stamp: str, access_stamp: int):
    return load_access(semantic_dir, data.base_layer())


def policy():
    """``(policy, from_file)`` of ``semantic/access.yml``, reloaded when it or the models change."""
    snap = data.snapshot()
    folder = Path(snap.settings.semantic_dir)
    return _policy(str(folder), snap.semantic_stamp, _access_stamp(folder))


# ---------------------------------------------------------------- identity
def peer_address() -> str | None:
    """The address the app's WebSocket came from (loopback included).

    ``st.context.ip_address`` hides loopback addresses (None), which is where a sidecar
    proxy connects from; the session's client context has the address itself. Should that
    internal ever move, the public value is used and a loopback proxy is refused (None is not
    a trusted address) — closed, not open."""
    address = None
    try:
        from streamlit.runtime.context import _get_client_context

        client = _get_client_context()
        address = client.remote_ip if client is not None else None
    except (ImportError, AttributeError):  # the internal moved: the public value (None for loopback)
        try:
            address = st.context.ip_address
        except RuntimeError:
            address = None
    except RuntimeError:  # no Streamlit runtime at all
        address = None
    return address if isinstance(address, str) else None  # AppTest's stand-in runtime has no address


def identify(settings) -> Identity | None:
    """The person asking, per ``settings.auth``; None for open access.

    Raises :class:`NotSignedIn` (OIDC, not signed in yet) or :class:`AccessError`."""
    if settings.auth == "none":
        return None
    if settings.auth == "header":
        return from_header(st.context.headers, peer_address(), settings)
    claims = st.user.to_dict()
    if not claims.get("is_logged_in"):
        raise NotSignedIn()
    return from_claims(claims, settings)


def resolve() -> Viewer:
    """This run's viewer (raises :class:`NotSignedIn` or :class:`AccessError`)."""
    settings = data.snapshot().settings
    ident = identify(settings)
    if ident is None:
        return Viewer("none", None, OPEN_SCOPE, "every deal")
    pol, from_file = policy()
    scope = scope_of(pol, ident)  # AccessError: no role
    return Viewer(settings.auth, ident.email, scope, scope_summary(pol, ident.email, ident.groups), from_file)


def _resolve_for_data() -> Viewer:
    """:func:`resolve` for a page run without the entrypoint's gate: not signed in is no access."""
    try:
        return resolve()
    except NotSignedIn:
        raise AccessError(Problem("not signed in", hint="sign in on the app's start page")) from None


data.use_resolver(_resolve_for_data)


# ------------------------------------------------------------------- pages
def gate() -> Viewer | None:
    """Resolve the viewer and hand the scope to :mod:`components.data`; or draw the sign-in or
    no-access page (and nothing else) and return None."""
    try:
        viewer = resolve()
    except NotSignedIn:
        _sign_in_page()
        return None
    except AccessError as e:
        _no_access_page(e)
        return None
    except PipelineBIError as e:  # a broken semantic/access.yml: nobody sees anything until it is fixed
        ui.show_error(e, "The access policy cannot be read")
        return None
    data.set_viewer(viewer)
    return viewer


def _who() -> str:
    """Who the app was told this is, for the no-access page (never trusted for data)."""
    settings = data.snapshot().settings
    if settings.auth == "oidc":
        claims = st.user.to_dict()
        who = claims.get("email") or claims.get("name") or "someone without an e-mail address"
        return f"{md_escape(who)}, signed in through the company's sign-in"
    value = st.context.headers.get(settings.auth_header)
    peer = md_escape(peer_address() or "an unknown address")
    named = f"naming {md_escape(value)}" if value else "naming nobody"
    return f"a request from {peer} {named} in its {md_escape(settings.auth_header)} header"


def _no_access_page(error: AccessError) -> None:
    settings = data.snapshot().settings
    st.title("PipelineBI")
    st.error("**You cannot see any data in this app.**", icon=":material/lock:")
    problem = error.problems[0] if error.problems else Problem(str(error))
    st.markdown(f"**Who you are:** {_who()}.  \n"
                f"**Why you see nothing:** {md_escape(problem.message)}.  \n"
                f"**What to do:** {md_escape(problem.hint or 'ask the administrator of this app')}.")
    if settings.auth == "oidc":
        st.button("Sign out", icon=":material/logout:", on_click=st.logout, key="auth_sign_out")


def _auth_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all (Streamlit raises its own error types)
        return False


def _sign_in_page() -> None:
    st.title("PipelineBI")
    st.markdown("Sign in with your company account to see the pipeline: each person sees the deals "
                "their role allows.")
    if not _auth_configured():
        st.error("**Sign-in is not configured on this server.** The administrator sets "
                 "`PIPELINEBI_AUTH_SECRETS` to a secrets file with an `[auth]` section (the company's "
                 "OpenID Connect provider), or `PIPELINEBI_AUTH=none` for open access.", icon=":material/key_off:")
        return
    st.button("Sign in", type="primary", icon=":material/login:", on_click=st.login, key="auth_sign_in")


def sidebar(viewer: Viewer) -> None:
    """Who is signed in and what they see; open access says so."""
    with st.sidebar:
        if viewer.mode == "none":
            # a coloured line, not an st.warning: a page's warnings are about its data
            st.markdown(f":orange-background[:material/lock_open: {OPEN_NOTICE}]")
            return
        st.markdown(f":material/person: **{md_escape(viewer.scope.who)}** — {md_escape(viewer.summary)}")
        if not viewer.policy_file:
            st.caption("No semantic/access.yml: everyone who signs in sees every deal.")
        if viewer.mode == "oidc":
            st.button("Sign out", icon=":material/logout:", on_click=st.logout, key="auth_sign_out")
