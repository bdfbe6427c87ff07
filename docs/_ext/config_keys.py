"""A short description of every setting, kept next to the generator that prints them.

The configuration reference is generated from ``api_plugin.settings.config.DEFAULTS`` at build
time; this module adds the words. ``tests/test_docs.py`` fails when a key of DEFAULTS has
no entry here, and when an entry names a key the package never reads: add the sentence
when you add the default.

``DESCRIPTIONS[section][key]`` is reStructuredText. ``UNSET`` says what an unset key
means, for keys read without an entry in DEFAULTS.
"""

from __future__ import annotations

DESCRIPTIONS: dict[str, dict[str, str]] = {
    "api": {
        "prefix": (
            "Where the API answers: every endpoint lives under this path. Clients such as "
            "Airflow's own ``json_client`` expect ``/api/experimental``."
        ),
        "auth_backend": (
            "The authentication backend, one name: ``default`` (open, loopback only unless "
            "``allow_open_api``), ``deny_all``, ``password``, ``kerberos``, ``airflow_jwt``, "
            "or one of Airflow's dotted names. See :doc:`/auth`."
        ),
        "auth_backends": (
            "A comma-separated list of backends tried in order; the first that "
            "authenticates the request wins. When set, it replaces ``auth_backend``."
        ),
        "allow_open_api": (
            "Let the ``default`` backend serve clients beyond loopback. Without it, "
            "``api-plugin serve`` refuses a non-loopback bind with ``default``, and the "
            "backend answers 403 to any client that is not on 127.0.0.0/8 or ::1."
        ),
        "max_body_bytes": (
            "The largest request body accepted, in bytes; a larger one is answered 413."
        ),
        "password_cache_seconds": (
            "How long a successful Basic login is remembered by each worker process, so a "
            "busy client is not charged one slow password hash per request. Each request "
            "still checks the user's current hash and active flag with one indexed read, so "
            "a changed password or a deactivated user stops working at once. ``0`` turns "
            "the cache off."
        ),
        "auth_failures_per_minute": (
            "Failed Basic logins allowed per account and client (an IPv6 client counted by "
            "its /64) in a minute, across all worker processes of the host; past it that "
            "client is answered 429 for that account without hashing. ``0`` turns the "
            "limit off."
        ),
        "auth_account_failures_per_minute": (
            "Failed Basic logins allowed per account in a minute from all clients together, "
            "on this host. Clients that logged in to the account recently are not refused "
            "by it. ``0`` turns the limit off."
        ),
        "auth_host_failures_per_minute": (
            "Failed Basic logins this host hashes in a minute, all accounts together: it "
            "bounds the hashing cost of guessing many usernames. Clients known to an account "
            "are not refused by it. ``0`` turns the limit off."
        ),
        "basic_realm": "The realm named in the ``WWW-Authenticate: Basic`` challenge.",
        "auth_throttle_path": (
            "The SQLite file in which a host's workers share their login-failure budgets. "
            "Empty (the default): ``auth-throttle.sqlite3`` in a folder of the user's own "
            "under the system's temporary directory; ``:memory:`` keeps the budgets per "
            "worker process."
        ),
    },
    "webserver": {
        "bind": (
            "Where ``api-plugin serve`` listens: ``host:port``, ``[::1]:port`` or "
            "``unix:/path``. ``--bind`` overrides it."
        ),
        "workers": (
            "gunicorn worker processes started by ``api-plugin serve``; ``--workers`` "
            "overrides it."
        ),
        "worker_timeout": "Seconds a gunicorn worker may spend on one request before it "
                          "is restarted.",
        "access_logfile": "Where ``api-plugin serve`` writes its access log; ``-`` is "
                          "standard output.",
        "request_read_timeout": "Seconds a client of ``api-plugin serve`` has to send its "
                                "whole request (headers and body) before the connection "
                                "is dropped; the worker is never held by a slow client.",
        "keep_alive": "Seconds ``api-plugin serve`` keeps an idle HTTP/1.1 connection open "
                      "for the client's next request (a client that polls then skips a "
                      "TCP handshake per request); ``0`` closes every connection after "
                      "its answer. An idle connection holds no worker.",
    },
    "cli": {
        "api_client": (
            "Which client the ``api-plugin`` commands use: ``json_client`` (HTTP to "
            "``endpoint_url``) or ``local_client`` (straight to the database). Airflow's "
            "dotted names ``airflow.api.client.json_client`` and "
            "``airflow.api.client.local_client`` are accepted too."
        ),
        "endpoint_url": (
            "The server ``json_client`` talks to, without the prefix (``[api] prefix`` is "
            "added). A path in the URL is kept, for a server mounted below a path."
        ),
        "auth": "How ``json_client`` authenticates: ``basic`` or ``kerberos``; unset sends "
                "no credentials (or Basic, when ``username`` is set).",
        "username": "The user name ``json_client`` sends with Basic authentication.",
        "password": "The password ``json_client`` sends with Basic authentication.",
        "kerberos_service": "The service ``json_client`` asks a Kerberos ticket for, as "
                            "Airflow's client does.",
        "kerberos_hostname": "The host name in that service principal, when it is not the "
                             "host of ``endpoint_url``.",
        "timeout": "Seconds ``json_client`` waits for an answer.",
    },
    "kerberos": {
        "keytab": "The keytab holding the service's keys (else ``KRB5_KTNAME`` or the "
                  "system default).",
        "service": (
            "Accept only this service principal (with ``hostname``), e.g. ``HTTP`` or "
            "``airflow``. Unset: any principal in the keytab is accepted."
        ),
        "hostname": "The host part of that principal; the machine's fully qualified name "
                    "when unset.",
    },
    "database": {
        "sql_alchemy_conn": (
            "The Airflow metadata database, as a SQLAlchemy URL "
            "(``postgresql://user:pass@host/airflow``, ``sqlite:////path/airflow.db``). "
            "Read from ``[core]`` too, where Airflow 1.10 keeps it."
        ),
    },
}

#: What an unset key means, for the keys DEFAULTS does not list.
UNSET: dict[str, dict[str, str]] = {
    "api": {"auth_backends": "unset (``auth_backend`` applies)"},
    "cli": {
        "auth": "unset",
        "username": "unset",
        "password": "unset",
        "kerberos_hostname": "the host of ``endpoint_url``",
    },
    "kerberos": {
        "keytab": "unset",
        "service": "unset (any principal in the keytab)",
        "hostname": "the fully qualified domain name",
    },
    "database": {
        "sql_alchemy_conn": "the embedded SQLite file ``api_plugin.db`` beside the "
                            "configuration file",
    },
}
