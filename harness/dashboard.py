"""``harness dashboard [study]``: optuna-dashboard on the harness's own Optuna storage.

The dashboard is served by ``optuna_dashboard.run_server`` in this process, bound to 127.0.0.1 by
default, on exactly the storage a sweep writes: the shared journal
(:func:`harness.study.storage.default_storage_url`), or ``--storage`` (PostgreSQL, a Redis
journal, another journal file). Every study in that storage is listed; naming a study picks the
storage it lives in (a study of the older one-file-per-study layout has its own journal) and
prints the address of its page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from harness.config import ConfigError

__all__ = ["DEFAULT_PORT", "DashboardTarget", "resolve_target", "serve"]

log = logging.getLogger(__name__)

#: optuna-dashboard's own default port
DEFAULT_PORT = 8080


@dataclass(frozen=True)
class DashboardTarget:
    """What the dashboard serves: a storage URL and, when one was named, a study in it."""

    storage_url: str
    study_name: str | None = None
    study_id: int | None = None

    def url(self, host: str, port: int) -> str:
        base = f"http://{host}:{port}/dashboard"
        return base if self.study_id is None else f"{base}/studies/{self.study_id}"


def _study_names(storage: Any) -> list[str]:
    import optuna

    return sorted(s.study_name for s in optuna.get_all_study_summaries(storage=storage))


def resolve_target(study: str | None, *, storage_url: str | None = None) -> DashboardTarget:
    """The storage to serve and the study's id in it; a ConfigError naming the study (and the
    studies there) when it is not in that storage. Reads only."""
    import difflib

    from harness.study.storage import default_storage_url, journal_path, make_storage

    url = storage_url or default_storage_url(study)
    if study is None:
        return DashboardTarget(url)
    path = journal_path(url)
    if path is not None and not path.is_file():  # nothing is created before the error
        raise ConfigError(
            "study",
            study,
            f"a study in {url} (no study has been run there yet: `harness sweep` first)",
            source="command line",
        )
    storage = make_storage(url)
    try:
        study_id = storage.get_study_id_from_name(study)
    except KeyError:
        names = _study_names(storage)
        close = difflib.get_close_matches(study, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        known = ", ".join(names) if names else "none yet: run `harness sweep` first"
        raise ConfigError(
            "study",
            study,
            f"a study in {url}{hint}; studies there: {known}",
            source="command line",
        ) from None
    return DashboardTarget(url, study, int(study_id))


def serve(target: DashboardTarget, *, host: str, port: int) -> None:
    """Run optuna-dashboard on ``target`` until Ctrl-C."""
    from optuna_dashboard import run_server

    from harness.study.storage import make_storage

    run_server(make_storage(target.storage_url), host=host, port=port)
