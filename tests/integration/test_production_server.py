"""The production path: gunicorn (workbench/gunicorn.conf.py) with DEBUG off on PostgreSQL, static files collected and
served by whitenoise, behind a TLS proxy (simulated by the X-Forwarded-Proto header the proxy would set)."""

from __future__ import annotations

import http.client
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import ROOT

pytestmark = pytest.mark.integration
HTTPS = {"X-Forwarded-Proto": "https"}  # what the TLS-terminating proxy adds


@dataclass
class Server:
    proc: subprocess.Popen
    port: int
    log: Path

    def get(self, path: str, *, host: str = "127.0.0.1", headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request("GET", path, headers={"Host": host, **(HTTPS if headers is None else headers)})
            response = conn.getresponse()
            response.text = response.read().decode("utf-8", "replace")  # type: ignore[attr-defined]
            return response
        finally:
            conn.close()


@pytest.fixture(scope="module")
def server(real_services, tmp_path_factory) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    var = tmp_path_factory.mktemp("prod-var")
    env = {
        **os.environ,
        **real_services,
        "DJANGO_SETTINGS_MODULE": "workbench.settings",  # the production settings, not the tests'
        "ENV_FILE": "",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "VAR_DIR": str(var),
        "GUNICORN_BIND": "127.0.0.1:0",  # a free port, read back from the log
        "GUNICORN_WORKERS": "1",
        "GUNICORN_THREADS": "2",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    collect = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert collect.returncode == 0, collect.stderr[-3000:]
    log = var / "gunicorn.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "workbench/gunicorn.conf.py"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        port, deadline = None, time.time() + 60
        while port is None and time.time() < deadline and proc.poll() is None:
            match = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", log.read_text())
            port = int(match.group(1)) if match else None
            time.sleep(0.2)
        assert port, f"gunicorn did not start:\n{log.read_text()[-3000:]}"
        srv = Server(proc, port, log)
        while srv.get("/accounts/login/").status != 200:  # the worker loads Django on its first request
            assert time.time() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        yield srv
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_static_files_are_served_without_debug(server: Server) -> None:
    plain = server.get("/static/css/workbench.css")
    assert plain.status == 200 and plain.getheader("Content-Type").startswith("text/css")
    assert plain.text.strip()
    # Pages link the hashed name, which never changes content: it is cached for good (whitenoise, 10 years).
    css = re.search(r'href="(/static/css/workbench\.[0-9a-f]{12}\.css)"', server.get("/accounts/login/").text)
    assert css, "the login page does not link the hashed stylesheet"
    hashed = server.get(css.group(1), headers={**HTTPS, "Accept-Encoding": "gzip"})
    assert hashed.status == 200
    assert hashed.getheader("Cache-Control") == "max-age=315360000, public, immutable"
    assert hashed.getheader("Content-Encoding") == "gzip"  # compressed by collectstatic


def test_login_page_renders_with_secure_headers(server: Server) -> None:
    page = server.get("/accounts/login/")
    assert page.status == 200 and 'name="username"' in page.text
    assert page.getheader("Strict-Transport-Security") == "max-age=31536000; includeSubDomains; preload"
    cookie = page.getheader("Set-Cookie") or ""
    assert "csrftoken=" in cookie and "Secure" in cookie


def test_project_pages_need_a_login(server: Server) -> None:
    page = server.get("/p/demo/")
    assert page.status == 302
    assert page.getheader("Location") == "/accounts/login/?next=/p/demo/"


def test_plain_http_is_redirected_to_https(server: Server) -> None:
    page = server.get("/accounts/login/", headers={})
    assert page.status == 301
    assert page.getheader("Location") == "https://127.0.0.1/accounts/login/"  # the Host header's name, no port


def test_bad_host_is_refused_and_errors_show_no_debug_page(server: Server) -> None:
    bad = server.get("/accounts/login/", host="evil.example.com")
    assert bad.status == 400
    missing = server.get("/no-such-page/")
    assert missing.status == 404 and "URLconf" not in missing.text and "Traceback" not in missing.text


def test_sigterm_stops_it_cleanly(server: Server) -> None:
    # Last in this module: it ends the module's server.
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=40) == 0
    log = server.log.read_text()
    assert "Shutting down: Master" in log and "Traceback" not in log
