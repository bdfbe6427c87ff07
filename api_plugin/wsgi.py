"""``gunicorn api_plugin.wsgi:application``: the standalone app from the configuration.

Built at import, once per worker (or once in the master with ``--preload``), so the
engine, flavor detection and table metadata are start-up work, not request work.
"""

from __future__ import annotations

from api_plugin.serving.mount import build_application

application = build_application()
