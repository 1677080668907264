"""``pipelinebi serve`` listens on 127.0.0.1 unless ``--host`` says otherwise, says where, and
never lets Streamlit show error details in the browser."""

from __future__ import annotations

import socket
import subprocess
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from pg_helpers import free_port
from pipelinebi.cli import build_parser, main
from pipelinebi.serve import streamlit_command
from pipelinebi.settings import PROJECT_ROOT


def option(cmd: list[str], name: str) -> str:
    assert cmd.count(name) == 1, cmd
    return cmd[cmd.index(name) + 1]


def test_the_command_binds_to_loopback_by_default():
    cmd = streamlit_command(Path("app.py"), 8501, headless=True)
    assert option(cmd, "--server.address") == "127.0.0.1"
    assert option(cmd, "--client.showErrorDetails") == "none"
    cmd = streamlit_command(Path("app.py"), 8501, headless=True, host="0.0.0.0")
    assert option(cmd, "--server.address") == "0.0.0.0" and option(cmd, "--browser.serverAddress") == "localhost"


@pytest.fixture
def fake_popen(monkeypatch, tmp_path, demo_db):
    """``subprocess.Popen`` recording the command, on a copy of the session's demo database
    (what serve finds on a second start: no build here; tests/test_cli_semantic.py has serve build one)."""
    import shutil

    shutil.copyfile(demo_db, tmp_path / "demo.duckdb")
    calls = []

    class FakeProcess:
        def __init__(self, cmd, env):
            calls.append(cmd)

        def wait(self):
            return 0

        def poll(self):
            return 0

    monkeypatch.setattr(subprocess, "Popen", FakeProcess)
    monkeypatch.setenv("PIPELINEBI_SEEDS_DIR", str(PROJECT_ROOT / "seeds"))
    monkeypatch.setenv("PIPELINEBI_DATABASE", str(tmp_path / "demo.duckdb"))
    return calls


def test_serve_listens_on_loopback_unless_told_and_prints_the_address(fake_popen, capsys):
    assert main(["serve", "--port", "8599"]) == 0
    assert option(fake_popen[0], "--server.address") == "127.0.0.1"
    assert "PipelineBI on http://127.0.0.1:8599 (listening on 127.0.0.1)" in capsys.readouterr().out
    assert main(["serve", "--port", "8599", "--host", "0.0.0.0"]) == 0
    assert option(fake_popen[1], "--server.address") == "0.0.0.0"
    assert "PipelineBI on http://localhost:8599 (listening on every network interface)" in capsys.readouterr().out


def test_serve_refuses_a_blank_host(fake_popen, capsys):
    assert main(["serve", "--host", " "]) == 2
    assert "' ' is not a host address" in capsys.readouterr().err and not fake_popen


def test_the_help_says_what_0_0_0_0_does(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--host ADDRESS" in text and "default 127.0.0.1" in text and "--host 0.0.0.0 exposes it" in text


def test_the_app_folder_config_hides_error_details():
    import tomllib

    config = tomllib.loads((PROJECT_ROOT / "app" / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] == "none"


def _non_loopback_ipv4() -> str | None:
    """This machine's address on its default route (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
        except OSError:
            return None
        ip = s.getsockname()[0]
    return None if ip.startswith("127.") or ip == "0.0.0.0" else ip


def test_a_started_server_answers_on_loopback_only(tmp_path):
    ip = _non_loopback_ipv4()
    if ip is None:
        pytest.skip("no non-loopback IPv4 address on this machine")
    script = tmp_path / "hello.py"
    script.write_text(textwrap.dedent("""
        import streamlit as st
        st.write("hello")
    """))
    port = free_port()
    cmd = streamlit_command(script, port, headless=True) + ["--server.fileWatcherType", "none"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                    assert r.read() == b"ok"
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "streamlit did not start"
                time.sleep(0.25)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((ip, port), timeout=2).close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
