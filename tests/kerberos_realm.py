"""A real MIT Kerberos realm on loopback for the tests, made by k5test.

The KDC listens on 127.0.0.1 at a free port block; the user ``user@KRBTEST.COM`` has a
ticket; the keytab holds ``HTTP/localhost`` and ``airflow/localhost``. DNS
canonicalisation is off so the service principal is exactly the host in the URL.
"""

from __future__ import annotations

import os
import random
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SERVICES = ("HTTP/localhost", "airflow/localhost")


def _ephemeral_floor() -> int:
    """The lowest port the kernel hands to outgoing connections (32768 by default)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ports:
            return int(ports.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port_block(size: int = 10) -> int:
    """A base port with ``size`` free ports after it (k5test uses several).

    Looked for below the ephemeral range: there no outgoing connection takes a port,
    so a block is free even right after suites that opened tens of thousands of
    connections (each leaves its client port in TIME_WAIT for a minute, and inside the
    ephemeral range 50 tries then found no 10 free ports in a row)."""
    top = min(_ephemeral_floor(), 65000) - size
    if top < 20000:  # an ephemeral range that starts low: look anywhere above 20000
        top = 65000 - size
    bottom = 20000
    for _ in range(200):
        base = random.randrange(bottom, top + 1)
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
