"""Real servers for the tests that need one: ``api-plugin serve`` or gunicorn itself, in a
child process on loopback, started and stopped in one place.

``start_server`` starts one and waits until it answers; ``running_server`` is the same
as a context manager; the ``spawn_server`` fixture (conftest) starts any number in a
test and stops them all after it. Settings are given as ``section__key`` names, passed
as ``API_PLUGIN__SECTION__KEY`` variables, the way a deployment would set them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PREFIX = "/api/experimental"
#: The WSGI target gunicorn is given when none is named.
WSGI_TARGET = ("api_plugin.wsgi:application",)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def request(url: str, body: Any = None, method: str | None = None) -> tuple[int, Any]:
    """``(status, decoded JSON)`` of one request (a JSON body when ``body`` is given)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_until_up(url: str, proc: subprocess.Popen[bytes], seconds: float = 30) -> None:
    """Return once ``url`` answers anything (a 401 too); fail if ``proc`` exits first."""
    for _ in range(int(seconds / 0.1)):  # polls, each at least 0.1 s apart
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}")
        try:
            request(url)
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {seconds}s")


#: How long ``Server.stop`` waits: beyond gunicorn's graceful timeout (30 s).
STOP_SECONDS = 45


@dataclass
class Server:
    """A server in a child process: its process and port."""

    proc: subprocess.Popen[bytes]
    port: int

    @property
    def base(self) -> str:
        """``http://127.0.0.1:<port>``: the host, no prefix (a client's endpoint_url)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        """The API's root URL, prefix included."""
        return self.base + PREFIX

    def stop(self) -> None:
        """Stop it gracefully and wait (idempotent).

        gunicorn gives its workers ``graceful_timeout`` (30 s) to go and then kills
        them; once in CI a worker took all of it (a server stopped just after it
        answered, perhaps a worker still starting), and a wait of exactly 30 s failed
        the test. So the wait outlasts gunicorn's own, and a server still running after
        it is killed (no process outlives its test) and the test fails."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


def start_server(folder: Path, database_url: str | None = None, *,
                 settings: Mapping[str, str] | None = None,
                 environ: Mapping[str, str] | None = None,
                 base_environ: Mapping[str, str] | None = None, workers: int = 2,
                 gunicorn: Sequence[str] | None = None, options: Sequence[str] = (),
                 new_session: bool = False, log: Path | None = None) -> Server:
    """A server over ``database_url`` (unset: the embedded default under ``folder``, or
    the one the configuration names), answering ``/test`` before this returns.

    ``api-plugin [options] serve`` by default; with ``gunicorn`` (e.g. ``WSGI_TARGET``
    or ``["--paste", ini]``), gunicorn run on those arguments. ``settings`` are
    ``section__key`` names; ``environ`` adds other variables (Airflow's, say) over
    ``base_environ`` (default this process's environment). The configuration file is
    ``folder/home/api_plugin.cfg``, absent unless a test writes it. ``new_session``
    starts it in a session of its own (signals sent to the test's process group then
    leave it alone). ``log``: a file that gets the server's output (else it is dropped).
    """
    port = free_port()
    env = {**(os.environ if base_environ is None else base_environ),
           "API_PLUGIN_CONFIG": str(folder / "home" / "api_plugin.cfg")}
    if database_url is not None:
        env["API_PLUGIN__DATABASE__SQL_ALCHEMY_CONN"] = database_url
    for name, value in (settings or {}).items():
        section, _, key = name.partition("__")
        env[f"API_PLUGIN__{section.upper()}__{key.upper()}"] = value
    env.update(environ or {})
    bind = f"127.0.0.1:{port}"
    if gunicorn is None:
        command = ["-m", "api_plugin.cli", *options, "serve", "--bind", bind,
                   "--workers", str(workers)]
    else:
        command = ["-m", "gunicorn", "--bind", bind, "--workers", str(workers), *gunicorn]
    sink = subprocess.DEVNULL if log is None else log.open("ab")
    try:
        proc = subprocess.Popen([sys.executable, *command], cwd=REPO, env=env, stdout=sink,
                                stderr=subprocess.STDOUT if log is not None
                                else subprocess.DEVNULL, start_new_session=new_session)
    finally:
        if log is not None:
            sink.close()  # type: ignore[union-attr]
    server = Server(proc, port)
    try:
        wait_until_up(server.api + "/test", proc)
    except BaseException:
        server.stop()
        raise
    return server


@contextmanager
def running_server(folder: Path, database_url: str | None = None,
                   **options: Any) -> Iterator[Server]:
    """``start_server`` for the length of a ``with`` block."""
    server = start_server(folder, database_url, **options)
    try:
        yield server
    finally:
        server.stop()
