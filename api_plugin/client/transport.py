"""What a client's transport does: send one request to the API, bring back its answer.

httpx's model: the client (``base.ApiClient``) writes every operation once, as a method,
a path and a body; a transport carries it. ``json_client.HttpTransport`` sends it over
HTTP to a server; ``local_client.LocalTransport`` hands it to the WSGI app in this
process. Both bring back an ``Answer``, which the client reads the same way, so the
results and the errors cannot differ between them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Answer:
    """One response: status, reason text, headers and body, and where it came from."""

    status: int
    reason: str
    headers: Sequence[tuple[str, str]]
    body: bytes
    source: str

    def header(self, name: str) -> list[str]:
        """Every value of header ``name``."""
        return [value for key, value in self.headers if key.lower() == name.lower()]


class Transport(Protocol):
    """Carries requests to the API; paths are relative to the API's prefix."""

    def request(self, method: str, path: str, *, json: Any = None,
                params: Mapping[str, Any] | None = None) -> Answer:
        """Send one request; a ``ClientConnectionError`` when the API cannot be reached."""

    def close(self) -> None:
        """Release connections."""
