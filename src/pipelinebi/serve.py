"""``pipelinebi serve``: make sure the database exists, then run the Streamlit app.

The app reads ``PIPELINEBI_DATABASE`` and ``PIPELINEBI_SEMANTIC_DIR`` from its environment,
so the resolved settings (CLI flags, env, .env) reach it unchanged. The exit code is
Streamlit's; Ctrl-C stops Streamlit and returns 130 without a traceback.

It listens on 127.0.0.1 unless told otherwise (Streamlit alone listens on every interface):
with ``PIPELINEBI_AUTH=none`` the dashboards have no sign-in, so putting them on the network is
a decision, ``--host 0.0.0.0``.

Sign-in (``PIPELINEBI_AUTH``, see :mod:`pipelinebi.access.identity`): for ``oidc``,
``PIPELINEBI_AUTH_SECRETS`` names the secrets file with Streamlit's ``[auth]`` section
(``--secrets.files``). For ``header``, the app believes the sign-in header only from
``PIPELINEBI_TRUSTED_PROXIES``, compared with the connection's real peer address: Streamlit's
web server (uvicorn) would otherwise replace a loopback peer's address with whatever its
``X-Forwarded-For`` header says, so ``serve`` sets ``FORWARDED_ALLOW_IPS`` to trust no one
(an operator's own value is kept).
Error details (tracebacks, exception types) never reach the browser: the app shows messages,
the server log has the rest.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from .errors import ConfigError, Problem
from .settings import PROJECT_ROOT, Settings

APP_SCRIPT = PROJECT_ROOT / "app" / "streamlit_app.py"


DEFAULT_HOST = "127.0.0.1"


def streamlit_command(script: Path, port: int, headless: bool, host: str = DEFAULT_HOST,
                      secrets: Path | None = None) -> list[str]:
    """The ``streamlit run`` command line (``secrets``: the secrets file holding ``[auth]``).

    >>> cmd = streamlit_command(Path("app.py"), 8501, headless=True)
    >>> cmd[cmd.index("--server.address") + 1], cmd[cmd.index("--browser.serverAddress") + 1]
    ('127.0.0.1', '127.0.0.1')
    >>> cmd = streamlit_command(Path("app.py"), 8501, headless=True, host="0.0.0.0")
    >>> cmd[cmd.index("--server.address") + 1], cmd[cmd.index("--browser.serverAddress") + 1]
    ('0.0.0.0', 'localhost')
    >>> cmd = streamlit_command(Path("app.py"), 8501, headless=True, secrets=Path("/etc/pipelinebi/auth.toml"))
    >>> cmd[cmd.index("--secrets.files") + 1]
    '/etc/pipelinebi/auth.toml'
    """
    cmd = [sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port),
           "--server.address", host]
    if secrets is not None:
        cmd += ["--secrets.files", str(secrets)]
    if headless:
        cmd += ["--server.headless", "true"]
    # "none", not the deprecated `false` (which still shows tracebacks): the flag wins over any
    # config file or STREAMLIT_* variable; app/.streamlit/config.toml says the same for a bare
    # `streamlit run`.
    cmd += ["--client.showErrorDetails", "none"]
    # Naming the address ourselves stops Streamlit from asking a public web service for this
    # machine's external IP (it does that on headless start-up just to print a URL).
    return cmd + ["--browser.gatherUsageStats", "false", "--browser.serverAddress", browse_host(host)]


def browse_host(host: str) -> str:
    """The host to put in a URL for ``host`` (a wildcard address is not one to browse to).

    >>> browse_host("0.0.0.0"), browse_host("::"), browse_host("10.1.2.3"), browse_host("::1")
    ('localhost', 'localhost', '10.1.2.3', '[::1]')
    """
    if host in ("0.0.0.0", "::", ""):
        return "localhost"
    return f"[{host}]" if ":" in host else host


def app_environment(settings: Settings) -> dict[str, str]:
    """The app's environment: resolved paths, and uvicorn told to keep the real peer address
    (``FORWARDED_ALLOW_IPS`` empty: no peer's ``X-Forwarded-For`` is believed).

    >>> env = app_environment(Settings(database="/tmp/x.duckdb"))
    >>> env["PIPELINEBI_DATABASE"], env["FORWARDED_ALLOW_IPS"] if "FORWARDED_ALLOW_IPS" not in os.environ else ""
    ('/tmp/x.duckdb', '')
    """
    env = {"FORWARDED_ALLOW_IPS": "", **os.environ,
           "PIPELINEBI_DATABASE": str(Path(settings.database).resolve()),
           "PIPELINEBI_SEMANTIC_DIR": str(Path(settings.semantic_dir).resolve())}
    if settings.engine:  # --engine: the app reads the same warehouse (the URL stays out of argv)
        env["PIPELINEBI_ENGINE"] = settings.engine
    return env


def serve(settings: Settings, port: int = 8501, headless: bool = False, script: Path | None = None,
          host: str = DEFAULT_HOST) -> int:
    from .demo import ensure_database

    script = Path(script or APP_SCRIPT)
    if not script.is_file():
        raise ConfigError(Problem(f"the app is not where it should be: {script}",
                                  hint="serve runs from a checkout installed with `pip install -e .`"))
    if not 1 <= port <= 65535:
        raise ConfigError(Problem(f"port {port} is out of range", hint="use 1 … 65535"))
    if not host or any(c.isspace() for c in host):
        raise ConfigError(Problem(f"'{host}' is not a host address", hint="e.g. 127.0.0.1, or 0.0.0.0 for every interface"))
    secrets = Path(settings.auth_secrets) if settings.auth_secrets else None
    if secrets is not None and not secrets.is_file():
        raise ConfigError(Problem(f"PIPELINEBI_AUTH_SECRETS: {secrets} is not a file",
                                  hint="a TOML file with an [auth] section (Streamlit's sign-in settings)"))
    from .engines import engine_url

    url = engine_url(settings)
    if url.kind == "duckdb":
        ensure_database(settings)
    else:  # a warehouse is not built here; the app says "warehouse unavailable" until it answers
        print(f"reading {url.redacted}", flush=True)
    where = "every network interface" if host in ("0.0.0.0", "::") else host
    print(f"PipelineBI on http://{browse_host(host)}:{port} (listening on {where})", flush=True)
    if settings.auth == "none":
        print("Access is open: everyone who can reach this address sees every deal "
              "(PIPELINEBI_AUTH=header or oidc signs people in)", flush=True)
    proc = subprocess.Popen(streamlit_command(script, port, headless, host, secrets), env=app_environment(settings))

    def _stop(signum, frame):  # SIGTERM (service managers, `kill`): stop Streamlit the same way as Ctrl-C
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        # The terminal sent SIGINT to Streamlit too; give it a moment to shut down cleanly.
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
