"""Keys Airflow derives for its rows: the DAG file hash and UUIDv7 ids."""

from __future__ import annotations

import hashlib
import os
import struct
import threading
import time

_last_uuid7 = 0
_uuid7_lock = threading.Lock()


def fileloc_hash(fileloc: str) -> int:
    """Airflow's hash of a DAG file path (``DagCode.dag_fileloc_hash``, before 3.x)."""
    return int(struct.unpack(">Q", hashlib.sha1(fileloc.encode()).digest()[-8:])[0] >> 8)


def uuid7_hex() -> str:
    """A UUIDv7 as the 32 hex digits Airflow 3 stores (``task_instance.id``...).

    48 bits of Unix milliseconds, the version, 74 random bits and the variant (RFC 9562).
    Within a process each id is greater than the one before (within one millisecond too,
    as Airflow's generator makes them), so a run's task instances sort in the order they
    were made, which is the order Airflow's API lists them in.
    """
    global _last_uuid7
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis & (2**48 - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a: 12 bits
    value |= 0b10 << 62
    value |= rand & (2**62 - 1)
    with _uuid7_lock:
        if value <= _last_uuid7 and (_last_uuid7 + 1) & (2**62 - 1):
            value = _last_uuid7 + 1  # stays in the random bits: version and variant kept
        _last_uuid7 = value
    return f"{value:032x}"
