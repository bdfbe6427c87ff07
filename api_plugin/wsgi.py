"""``gunicorn api_plugin.wsgi:application``: the standalone app from the configuration.

Built at import, once per worker, so the engine, flavor detection and table metadata are
start-up work, not request work; a database that is down then makes the worker answer
503 until it can build the app, rather than fail to boot (``built_now_or_later``). With
``--preload`` each forked worker builds its own (no pooled socket shared across a fork).
"""

from __future__ import annotations

from api_plugin.serving.mount import build_application
from api_plugin.serving.per_process import built_now_or_later

application = built_now_or_later(build_application)
