"""Credentials out of everything the harness records or prints.

Storage and tracking URLs may carry a password (``postgresql://user:PASSWORD@host/db``) or a
token in their query (``...?password=...``, ``?token=...``). The process needs the real URL to
connect; nothing else does. Every string that leaves the process through the harness (MLflow
tags, params and text artifacts written by :class:`harness.tracking.Tracker`, the ``command``
tag, printed lines, error lines, reports) goes through :func:`redact_text` first, which keeps the
user name and host (what a person needs to know which store it was) and replaces the secret with
``***``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["MASK", "redact", "redact_mapping", "redact_text", "redact_url"]

MASK = "***"
#: query parameters whose value is a secret (compared lower-case, ``-`` read as ``_``)
SECRET_QUERY_KEYS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "pass",
        "secret",
        "token",
        "access_token",
        "auth_token",
        "api_key",
        "apikey",
        "access_key",
        "secret_key",
        "sslpassword",
        "client_secret",
    }
)
# scheme://[user[:password]@]host...: a URL anywhere in a text (up to a space or a quote)
_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<rest>[^\s'\"<>`]+)")
_QUERY_PAIR = re.compile(r"(?P<sep>[?&;])(?P<key>[^=&;#\s]+)=(?P<value>[^&;#\s'\"]*)")


def _redact_userinfo(rest: str) -> str:
    # the last "@" of the authority: a password may hold an unencoded "@" or ":"
    at = rest.rfind("@", 0, _authority_end(rest))
    if at < 0:
        return rest
    userinfo, hostpart = rest[:at], rest[at + 1 :]
    user, colon, password = userinfo.partition(":")
    if colon and password and password != MASK:
        return f"{user}:{MASK}@{hostpart}"
    if not colon and _looks_like_token(user):
        return f"{MASK}@{hostpart}"  # https://TOKEN@host (GitHub-style token as the user)
    return rest


def _authority_end(rest: str) -> int:
    """Where ``user:pass@host:port`` ends: the first ``/``, ``?`` or ``#``."""
    m = re.search(r"[/?#]", rest)
    return m.start() if m else len(rest)


def _looks_like_token(user: str) -> bool:
    return len(user) >= 20 and re.fullmatch(r"[A-Za-z0-9_\-]+", user) is not None


def _redact_query(rest: str) -> str:
    def mask(m: re.Match[str]) -> str:
        key = m.group("key").lower().replace("-", "_")
        if key in SECRET_QUERY_KEYS and m.group("value"):
            return f"{m.group('sep')}{m.group('key')}={MASK}"
        return m.group(0)

    return _QUERY_PAIR.sub(mask, rest)


def redact_url(url: str) -> str:
    """``url`` with its password (and secret query values) replaced by ``***``.

    >>> redact_url("postgresql://bob:s3cret@db.example:5432/optuna")
    'postgresql://bob:***@db.example:5432/optuna'
    """
    return redact_text(url)


def redact_text(text: str) -> str:
    """Every URL inside ``text`` (a command line, an error message, a YAML file) redacted."""
    if "://" not in text:
        return text

    def one(m: re.Match[str]) -> str:
        rest = _redact_query(_redact_userinfo(m.group("rest")))
        return m.group("scheme") + rest

    return _URL.sub(one, text)


def redact(value: Any) -> Any:
    """A string redacted; anything else unchanged (numbers, None)."""
    return redact_text(value) if isinstance(value, str) else value


def redact_mapping(values: Mapping[str, Any]) -> dict[str, Any]:
    """Tags or params with every string value redacted."""
    return {k: redact(v) for k, v in values.items()}
