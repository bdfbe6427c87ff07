"""Password hashes of both flavors: bcrypt (Airflow 1.10 password_auth) and werkzeug's
``pbkdf2:``/``scrypt:`` (Flask-AppBuilder in Airflow 2). Checking never raises."""

from __future__ import annotations

import bcrypt
from werkzeug.security import check_password_hash, generate_password_hash

from api_plugin.store.tables import AIRFLOW1

_BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")
BCRYPT_MAX_BYTES = 72


def is_bcrypt(stored_hash: str) -> bool:
    return stored_hash.startswith(_BCRYPT_PREFIXES)


def verify_password(stored_hash: str, password: str) -> bool:
    """True when ``password`` matches; False for any mismatch or unusable hash.

    bcrypt's own refusals (a password over 72 bytes, a malformed hash) are a mismatch,
    never an error a client could turn into a 500.
    """
    try:
        if is_bcrypt(stored_hash):
            secret = password.encode("utf-8")
            if len(secret) > BCRYPT_MAX_BYTES:
                return False
            return bool(bcrypt.checkpw(secret, stored_hash.encode("ascii")))
        if stored_hash.startswith(("pbkdf2:", "scrypt:")):
            return check_password_hash(stored_hash, password)
    except (ValueError, TypeError, UnicodeError):
        return False
    return False


def hash_password(password: str, flavor: str) -> str:
    """A new hash in the format the flavor's Airflow writes."""
    if flavor == AIRFLOW1:
        return bcrypt.hashpw(password.encode("utf-8")[:BCRYPT_MAX_BYTES],
                             bcrypt.gensalt(12)).decode("ascii")
    return generate_password_hash(password, method="pbkdf2:sha256:260000")
