"""Authentication: one module per backend, the middleware that runs a chain of them, and
the loader that builds the configured chain (``wrap_with_auth``)."""

from api_plugin.auth.base import (
    AuthBackend,
    Authenticated,
    AuthMiddleware,
    Denied,
    NotAttempted,
    Outcome,
)
from api_plugin.auth.loader import build_backends, canonical_name, wrap_with_auth

__all__ = ["AuthBackend", "AuthMiddleware", "Authenticated", "Denied", "NotAttempted",
           "Outcome", "build_backends", "canonical_name", "wrap_with_auth"]
