"""A real MIT Kerberos realm on loopback for the tests, made by k5test.

The KDC listens on 127.0.0.1 at a free port block; the user ``user@KRBTEST.COM`` has a
ticket; the keytab holds ``HTTP/localhost`` and ``airflow/localhost``. DNS
canonicalisation is off so the service principal is exactly the host in the URL.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SERVICES = ("HTTP/localhost", "airflow/localhost")


def free_port_block(size: int = 10) -> int:
    """A base port with ``size`` free ports after it (k5test uses several)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + size > 65000:
            continue
        sockets: list[socket.socket] = []
        try:
            for port in range(base, base + size):
                sockets.append(socket.socket())  # kept before bind, so always closed
                sockets[-1].bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
        return base
    raise RuntimeError("no free port block for the KDC")


@contextmanager
def kerberos_realm() -> Iterator[Any]:
    """Start the realm, export its environment to this process, always stop it."""
    from k5test import K5Realm

    realm = K5Realm(
        portbase=free_port_block(),
        krb5_conf={"libdefaults": {"rdns": "false", "dns_canonicalize_hostname": "false",
                                   "udp_preference_limit": "1"}},
    )
    saved = {k: os.environ.get(k) for k in ("KRB5_CONFIG", "KRB5CCNAME", "KRB5_KTNAME",
                                            "KRB5_CLIENT_KTNAME", "KRB5RCACHEDIR")}
    try:
        for service in SERVICES:
            realm.addprinc(f"{service}@{realm.realm}")
            realm.extract_keytab(f"{service}@{realm.realm}", realm.keytab)
        os.environ.update({k: v for k, v in realm.env.items() if k.startswith("KRB5")})
        os.environ["KRB5RCACHEDIR"] = realm.tmpdir
        yield realm
    finally:
        realm.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
