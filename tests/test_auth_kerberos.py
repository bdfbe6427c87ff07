"""SPNEGO against a real MIT KDC: real tickets, a real keytab, a real client
(requests-kerberos) with mutual authentication, and hostile tokens."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from werkzeug.serving import make_server

from api_plugin.auth.base import AuthMiddleware
from api_plugin.auth.kerberos import GssRefused, KerberosBackend, kerberos_middleware
from tests.kerberos_realm import kerberos_realm

pytestmark = pytest.mark.kerberos


def whoami(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    body = json.dumps({"user": environ.get("REMOTE_USER", "")}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


@pytest.fixture(scope="module")
def realm() -> Iterator[Any]:
    with kerberos_realm() as made:
        yield made


def serve(app: Any) -> tuple[str, Callable[[], None]]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return f"http://localhost:{server.server_port}", server.shutdown


@pytest.fixture(scope="module")
def server(realm: Any) -> Iterator[str]:
    url, stop = serve(kerberos_middleware(whoami, keytab=realm.keytab))
    yield url
    stop()


def kerberos_auth(service: str = "HTTP") -> Any:
    from requests_kerberos import REQUIRED, HTTPKerberosAuth

    return HTTPKerberosAuth(mutual_authentication=REQUIRED, service=service)


def test_no_token_is_a_negotiate_challenge(server: str) -> None:
    response = requests.get(server + "/", timeout=10)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Negotiate"
    assert response.json()["error"]


@pytest.mark.parametrize("service", ["HTTP", "airflow"])
def test_a_real_ticket_passes_with_mutual_auth(server: str, realm: Any, service: str) -> None:
    response = requests.get(server + "/", auth=kerberos_auth(service), timeout=10)
    assert response.status_code == 200, response.text
    assert response.json() == {"user": realm.user_princ}
    assert response.headers["WWW-Authenticate"].startswith("Negotiate ")


def test_configured_service_restricts_acceptance(realm: Any) -> None:
    url, stop = serve(kerberos_middleware(whoami, keytab=realm.keytab, service="HTTP",
                                          hostname="localhost"))
    try:
        assert requests.get(url, auth=kerberos_auth("HTTP"), timeout=10).status_code == 200
        refused = requests.get(url, auth=kerberos_auth("airflow"), timeout=10)
        assert refused.status_code in (401, 403)
    finally:
        stop()


def fresh_token(service: str = "HTTP@localhost") -> str:
    """A client token made with the user's real ticket (pykerberos's client side)."""
    import kerberos

    _, context = kerberos.authGSSClientInit(service)
    try:
        kerberos.authGSSClientStep(context, "")
        return "Negotiate " + kerberos.authGSSClientResponse(context)
    finally:
        kerberos.authGSSClientClean(context)


@pytest.mark.parametrize("header", [
    "Negotiate " + base64.b64encode(b"garbage" * 10).decode(),
    "Negotiate !!!not base64!!!",
    "Negotiate " + base64.b64encode(b"\x00\x01\x00" * 30).decode(),
    "Negotiate " + "A" * 60_000,
    "Negotiate ",
    "Negotiate YII=",
], ids=["garbage", "not-base64", "nul-bytes", "oversized", "empty", "truncated-asn1"])
def test_hostile_tokens_are_refused_not_crashed(server: str, header: str) -> None:
    response = requests.get(server + "/", headers={"Authorization": header}, timeout=10)
    assert response.status_code in (401, 403)
    assert response.json()["error"]


def test_truncated_and_replayed_tokens(server: str) -> None:
    header = fresh_token()
    assert requests.get(server + "/", headers={"Authorization": header},
                        timeout=10).status_code == 200
    truncated = fresh_token()[: len(header) // 2]
    assert requests.get(server + "/", headers={"Authorization": truncated},
                        timeout=10).status_code in (401, 403)
    replay = requests.get(server + "/", headers={"Authorization": header}, timeout=10)
    assert replay.status_code in (401, 403)


def test_many_failed_handshakes_stay_bounded(server: str) -> None:
    bad = {"Authorization": "Negotiate " + base64.b64encode(b"\x60\x01" * 40).decode()}
    with requests.Session() as session:
        for _ in range(500):
            assert session.get(server + "/", headers=bad, timeout=10).status_code in (401, 403)
    assert requests.get(server + "/", auth=kerberos_auth(), timeout=10).status_code == 200


class FakeAcceptor:
    """The seam: a backend test that needs no C extension."""

    def accept(self, principal_name: str, token_b64: str) -> tuple[str, str | None]:
        if token_b64 == base64.b64encode(b"good").decode():
            return "alice@EXAMPLE", "bXV0dWFs"
        raise GssRefused("bad token")


def test_backend_with_a_fake_acceptor() -> None:
    from werkzeug.test import Client

    client = Client(AuthMiddleware(whoami, [KerberosBackend(acceptor=FakeAcceptor())]))
    good = client.get("/", headers={"Authorization": "Negotiate " + base64.b64encode(
        b"good").decode()})
    assert good.status_code == 200 and good.get_json() == {"user": "alice@EXAMPLE"}
    assert good.headers["WWW-Authenticate"] == "Negotiate bXV0dWFs"
    bad = client.get("/", headers={"Authorization": "Negotiate " + base64.b64encode(
        b"bad").decode()})
    assert bad.status_code == 403
