"""Signing in for real, in Chromium, against the app started by ``pipelinebi serve``.

* OpenID Connect: a local identity provider (Authlib's authorization server, tests/oidc_provider.py:
  discovery, JWKS, authorization code flow with PKCE and nonce, RS256 ID tokens) on 127.0.0.1;
  the app is pointed at it by ``PIPELINEBI_AUTH_SECRETS`` (Streamlit's ``[auth]`` section). The
  browser clicks "Sign in", types the e-mail and password into the provider's form, comes back
  signed in.
* Trusted header: a local authenticating reverse proxy (tests/auth_proxy.py) in front of the
  app adds ``X-Forwarded-Email``; its connections leave from 127.0.0.2, the only address the
  app trusts (``PIPELINEBI_TRUSTED_PROXIES``). A browser that types the header itself, straight
  to the app, is refused; through the proxy, its header is replaced.

A rep (Ava Chen) and a manager (Ivan Brown, team APAC) each see the forecast KPIs the semantic
layer gives for their own scope — different numbers, neither the company's. Screenshots go to
test-output/screenshots/sign_in_*.png.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from app_support import build_demo_db
from auth_helpers import PEOPLE, Serve, expected_kpis, scope_as
from auth_proxy import AuthProxy
from browser_helpers import wait_for_app
from oidc_provider import OIDCProvider
from pg_helpers import free_port
from pipelinebi.compiler.query import Query
from pipelinebi.dashboards.queries import period_bounds, period_label
from pipelinebi.semantic import load_semantic_layer
from pipelinebi.warehouse import database_as_of, open_readonly

REPO = Path(__file__).resolve().parents[2]
AVA, MANAGER = "ava.chen@pipelinebi.example", "apac.manager@pipelinebi.example"
#: not listed in semantic/access.yml: their role comes from a group the identity provider (or the
#: proxy) names — sales-leadership → executive — so they see the company's numbers
VP, VP_GROUPS = "vp@newhire.example", ["all-staff", "sales-leadership"]
PASSWORDS = {AVA: "ava-" + secrets.token_hex(4), MANAGER: "ivan-" + secrets.token_hex(4),
             "stranger@elsewhere.example": "x-" + secrets.token_hex(4), VP: "vp-" + secrets.token_hex(4)}
VIEWPORT = {"width": 1440, "height": 1200}
#: its own CI tier (``pytest -m signin``, ~1 min: each module starts a provider, proxies and apps)
pytestmark = pytest.mark.signin


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The demo database, its quarter, and each person's expected KPIs (None: everyone)."""
    db = build_demo_db(tmp_path_factory.mktemp("sign_in") / "demo.duckdb")
    layer = load_semantic_layer(REPO / "semantic")
    con = open_readonly(db)
    try:
        quarter = period_bounds(database_as_of(con), "quarter")
        want = {email: expected_kpis(layer, con, email, *quarter) for email in (AVA, MANAGER, None)}
        # Explore's default query (forecast and target by team in the period), as Ava
        explore = layer.query(Query(metrics=("forecast", "target"), dimensions=("team",), start=quarter[0],
                                    end=quarter[1], scope=scope_as(AVA, layer)), con).df()
        want["explore", AVA] = {r.team: round(float(r.forecast), 2) for r in explore.itertuples()}
    finally:
        con.close()
    return db, period_label(quarter[0], "quarter"), want


def kpis(page) -> dict[str, str]:
    out = {}
    for metric in page.get_by_test_id("stMetric").all():
        lines = [x.strip() for x in metric.inner_text().splitlines() if x.strip()]
        out[lines[0]] = lines[1]
    return out


def open_forecast(page, base: str, period: str) -> None:
    page.goto(f"{base}/forecast?period={period}")
    page.get_by_role("heading", name="Forecast vs target").first.wait_for(timeout=60_000)
    wait_for_app(page, timeout=60_000)
    page.get_by_test_id("stMetric").first.wait_for(timeout=30_000)


def check_person(page, email: str, want: dict[str, dict[str, str]]) -> None:
    name, role, sees = PEOPLE[email]
    shown = kpis(page)
    assert {k: shown.get(k) for k in want[email]} == want[email], email
    assert {k: shown.get(k) for k in want[None]} != want[None]  # not the company's numbers
    sidebar = page.get_by_test_id("stSidebar").inner_text()
    assert f"{name} ({role})" in sidebar and sees in sidebar
    assert "Access is open" not in sidebar


# ---------------------------------------------------------------- trusted header
@pytest.fixture(scope="module")
def header_app(world):
    db, _, _ = world
    env = {"PIPELINEBI_DATABASE": str(db), "PIPELINEBI_AUTH": "header",
           "PIPELINEBI_TRUSTED_PROXIES": '["127.0.0.2"]'}
    with Serve(env) as url:
        proxies = {email: AuthProxy(url, email, source="127.0.0.2") for email in (AVA, MANAGER)}
        for p in proxies.values():
            p.start()
        try:
            yield url, {email: p.url for email, p in proxies.items()}
        finally:
            for p in proxies.values():
                p.stop()


def test_trusted_header_rep_and_manager_see_their_own_numbers(browser, header_app, world, screenshot_dir):
    url, proxies = header_app
    _, period, want = world
    for email in (AVA, MANAGER):
        # the browser also sends a sign-in header of its own: the proxy replaces it
        context = browser.new_context(viewport=VIEWPORT,
                                      extra_http_headers={"X-Forwarded-Email": "ceo@pipelinebi.example"})
        page = context.new_page()
        open_forecast(page, proxies[email], period)
        check_person(page, email, want)
        page.screenshot(path=screenshot_dir / f"sign_in_header_{PEOPLE[email][1]}.png", full_page=True)
        context.close()
    assert want[AVA] != want[MANAGER]


def test_trusted_header_rep_downloads_and_reads_sql_of_her_rows_only(browser, header_app, world, screenshot_dir,
                                                                     tmp_path):
    import csv
    import io

    _, proxies = header_app
    _, period, want = world
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = context.new_page()
    page.goto(f"{proxies[AVA]}/explore?period={period}")
    page.get_by_role("heading", name="Explore").wait_for(timeout=60_000)
    wait_for_app(page, timeout=60_000)
    with page.expect_download(timeout=30_000) as info:
        page.get_by_test_id("stDownloadButton").get_by_role("button").click()
    info.value.save_as(tmp_path / "explore.csv")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "explore.csv").read_text(), newline="")))
    assert {r["team"]: round(float(r["forecast"]), 2) for r in rows} == want["explore", AVA]
    page.get_by_text("Generated SQL").click()
    page.get_by_text("'R0001'").first.wait_for(timeout=30_000)  # the SQL her query runs: her rows
    page.screenshot(path=screenshot_dir / "sign_in_header_rep_explore.png", full_page=True)
    context.close()


def check_group_role(page, want) -> None:
    """Someone whose role came from a group: the executive's numbers (the company's), said so."""
    shown = kpis(page)
    assert {k: shown.get(k) for k in want[None]} == want[None]
    assert {k: shown.get(k) for k in want[AVA]} != want[AVA]
    # md_escape puts a word joiner before '@' (no auto-link); the reader sees the address
    sidebar = page.get_by_test_id("stSidebar").inner_text().replace("\u2060", "")
    assert f"{VP} (executive)" in sidebar and "every deal" in sidebar
    assert "Access is open" not in sidebar


def test_trusted_header_groups_give_the_groups_role(browser, header_app, world, screenshot_dir):
    url, _ = header_app
    _, period, want = world
    for groups in (",".join(VP_GROUPS), ""):
        proxy = AuthProxy(url, VP, groups=groups, source="127.0.0.2")
        proxy.start()
        try:
            context = browser.new_context(viewport=VIEWPORT)
            page = context.new_page()
            if groups:
                open_forecast(page, proxy.url, period)
                check_group_role(page, want)
                page.screenshot(path=screenshot_dir / "sign_in_header_group.png", full_page=True)
            else:  # the same person without the group has no role: nothing
                page.goto(f"{proxy.url}/forecast?period={period}")
                page.get_by_text("You cannot see any data in this app").wait_for(timeout=60_000)
                assert page.get_by_test_id("stMetric").count() == 0
            context.close()
        finally:
            proxy.stop()


def test_a_header_not_from_the_trusted_proxy_is_refused(browser, header_app, world, screenshot_dir):
    url, _ = header_app
    _, period, _ = world
    # straight to the app, claiming to be the CEO and to come through the trusted proxy: the
    # X-Forwarded-For would move the peer address to 127.0.0.2 if Streamlit's web server believed
    # it (uvicorn does for loopback peers; `pipelinebi serve` tells it not to)
    forged = {"X-Forwarded-Email": "ceo@pipelinebi.example", "X-Forwarded-For": "127.0.0.2"}
    context = browser.new_context(viewport=VIEWPORT, extra_http_headers=forged)
    page = context.new_page()
    page.goto(f"{url}/forecast?period={period}")
    page.get_by_text("You cannot see any data in this app").wait_for(timeout=60_000)
    wait_for_app(page)
    main = page.get_by_test_id("stMain").inner_text()
    assert "not a trusted proxy" in main and "127.0.0.1" in main
    assert page.get_by_test_id("stMetric").count() == 0
    assert page.get_by_test_id("stSelectbox").count() == 0  # no filters, no data in them
    page.screenshot(path=screenshot_dir / "sign_in_header_untrusted.png", full_page=True)
    context.close()


# ---------------------------------------------------------------------- OIDC
@pytest.fixture(scope="module")
def oidc_app(world, tmp_path_factory):
    db, _, _ = world
    port = free_port()
    users = {AVA: (PASSWORDS[AVA], "Ava Chen", []), MANAGER: (PASSWORDS[MANAGER], "Ivan Brown", []),
             "stranger@elsewhere.example": (PASSWORDS["stranger@elsewhere.example"], "A Stranger", []),
             VP: (PASSWORDS[VP], VP, VP_GROUPS)}
    provider = OIDCProvider(users, redirect_uris=[f"http://127.0.0.1:{port}/oauth2callback"])
    issuer = provider.start()
    secrets_file = tmp_path_factory.mktemp("auth") / "auth.toml"
    secrets_file.write_text(
        "[auth]\n"
        f'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_urlsafe(32)}"\n'
        f'client_id = "{provider.client.client_id}"\n'
        f'client_secret = "{provider.client.client_secret}"\n'
        f'server_metadata_url = "{issuer}/.well-known/openid-configuration"\n')
    env = {"PIPELINEBI_DATABASE": str(db), "PIPELINEBI_AUTH": "oidc", "PIPELINEBI_AUTH_SECRETS": str(secrets_file),
           "PIPELINEBI_OIDC_GROUPS_CLAIM": "groups"}
    try:
        with Serve(env, port=port) as url:
            yield url, provider
    finally:
        provider.stop()


def sign_in(page, app_url: str, provider: OIDCProvider, email: str, shots: Path | None = None) -> None:
    page.goto(app_url)
    page.get_by_role("button", name="Sign in").wait_for(timeout=60_000)
    wait_for_app(page)
    assert page.get_by_test_id("stMetric").count() == 0
    if shots:
        page.screenshot(path=shots / "sign_in_oidc_0_start.png")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{provider.issuer}/authorize**", timeout=30_000)
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORDS[email])
    if shots:
        page.screenshot(path=shots / "sign_in_oidc_1_provider.png")
    page.click("button[type=submit]")
    page.wait_for_url(f"{app_url}/**", timeout=30_000)
    wait_for_app(page, timeout=60_000)


def test_oidc_rep_and_manager_sign_in_and_see_their_own_numbers(browser, oidc_app, world, screenshot_dir):
    url, provider = oidc_app
    _, period, want = world
    for i, email in enumerate((AVA, MANAGER)):
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        sign_in(page, url, provider, email, screenshot_dir if i == 0 else None)
        open_forecast(page, url, period)  # the session cookie holds the sign-in across pages
        check_person(page, email, want)
        page.screenshot(path=screenshot_dir / f"sign_in_oidc_{PEOPLE[email][1]}.png", full_page=True)
        if email == AVA:  # signing out ends it: back to the sign-in page, no data
            page.get_by_role("button", name="Sign out").click()
            page.get_by_role("button", name="Sign in").wait_for(timeout=60_000)
            assert page.get_by_test_id("stMetric").count() == 0
        context.close()
    assert provider.sign_ins[-2:] == [AVA, MANAGER]  # both went through the provider's form
    assert want[AVA] != want[MANAGER]


def test_oidc_person_without_a_role_sees_why_and_nothing_else(browser, oidc_app, world, screenshot_dir):
    url, provider = oidc_app
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    sign_in(page, url, provider, "stranger@elsewhere.example")
    page.get_by_text("You cannot see any data in this app").wait_for(timeout=60_000)
    main = page.get_by_test_id("stMain").inner_text()
    assert "stranger" in main and "no role in semantic/access.yml" in main
    assert page.get_by_test_id("stMetric").count() == 0
    page.screenshot(path=screenshot_dir / "sign_in_oidc_no_role.png", full_page=True)
    context.close()


def test_oidc_groups_claim_gives_the_groups_role(browser, oidc_app, world, screenshot_dir):
    """A person the policy does not list, whose ID token's groups claim names sales-leadership."""
    url, provider = oidc_app
    _, period, want = world
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    sign_in(page, url, provider, VP)
    open_forecast(page, url, period)
    check_group_role(page, want)
    page.screenshot(path=screenshot_dir / "sign_in_oidc_group.png", full_page=True)
    context.close()
    assert provider.sign_ins[-1] == VP
