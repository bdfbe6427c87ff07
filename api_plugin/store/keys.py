"""Keys Airflow derives for its rows: the DAG file hash and UUIDv7 ids."""

from __future__ import annotations

import hashlib
import os
import struct
import time


def fileloc_hash(fileloc: str) -> int:
    """Airflow's hash of a DAG file path (``DagCode.dag_fileloc_hash``, before 3.x)."""
    return int(struct.unpack(">Q", hashlib.sha1(fileloc.encode()).digest()[-8:])[0] >> 8)


def uuid7_hex() -> str:
    """A UUIDv7 as the 32 hex digits Airflow 3 stores (``task_instance.id``...).

    48 bits of Unix milliseconds, the version, 74 random bits and the variant (RFC 9562),
    so ids sort by creation time as Airflow's own do.
    """
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis & (2**48 - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a: 12 bits
    value |= 0b10 << 62
    value |= rand & (2**62 - 1)
    return f"{value:032x}"
