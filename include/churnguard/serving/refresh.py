"""Hot swap: follow the registry's ``champion`` and ``challenger`` aliases without ever serving nothing.

:meth:`ModelWatcher.refresh` (every ``serving.refresh_seconds`` from a background task, and at once on
``POST /admin/refresh``) reads both aliases. A version already held is reused (a promoted challenger is
served at once); any other is loaded and held to the canary rows (:func:`.served.load_served`) while the old
deployment keeps answering, then the new :class:`~.routing.Deployment` replaces the old one in one reference
assignment: a request that started on the old one finishes on it.

A version that fails to load or to score the canary is refused: the alias keeps the version it served (none
for a challenger never loaded), the refusal is logged, counted and listed by ``/v1/models``, and the poll does
not load that version again unless a forced refresh (``POST /admin/refresh``) asks (a service without any
champion tries on every poll, so it gets ready once the registry is back). An alias
poll the registry cannot answer changes nothing and is counted; a ``champion`` alias that disappears leaves
the loaded champion serving (a service with a champion never drops it for nothing).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import pandas as pd

from churnguard.registry import CHALLENGER, CHAMPION, ModelRegistry, RegistryError, VersionInfo
from churnguard.serving.metrics import ServingMetrics
from churnguard.serving.routing import Deployment
from churnguard.serving.served import ServedModel, load_served

log = logging.getLogger(__name__)
ALIASES = (CHAMPION, CHALLENGER)


@dataclass(frozen=True)
class Refusal:
    """A version the service would not serve, and why (one line)."""

    alias: str
    version: int
    reason: str
    at: datetime

    def to_dict(self) -> dict:
        return {"alias": self.alias, "version": self.version, "reason": self.reason, "at": self.at.isoformat()}


@dataclass(frozen=True)
class RefreshResult:
    """What one refresh did: the versions swapped in by alias, the refusals, or the registry's error."""

    swapped: dict[str, int | None] = field(default_factory=dict)
    refused: list[Refusal] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict:
        return {"swapped": self.swapped, "refused": [r.to_dict() for r in self.refused], "error": self.error}


class ModelWatcher:
    """Holds the current :class:`Deployment` (``deployment``, read by every request) and replaces it."""

    def __init__(
        self, models: ModelRegistry, deployment: Deployment, canary: pd.DataFrame, metrics: ServingMetrics
    ) -> None:
        self.models, self.deployment, self.canary, self.metrics = models, deployment, canary, metrics
        self.refusals: dict[int, Refusal] = {}
        self.last_refresh: datetime | None = None
        self._lock = threading.Lock()  # one refresh at a time: the poll's and the admin's

    def refresh(self, force: bool = False) -> RefreshResult:
        """Read the aliases and swap in what moved (blocking: run it in a thread). ``force``: also try again
        the versions refused before."""
        with self._lock:
            try:
                wanted = {alias: self.models.version_by_alias(alias) for alias in ALIASES}
            except RegistryError as exc:
                self.metrics.refresh_errors.inc()
                log.warning("serving: aliases not refreshed: %s", exc)
                return RefreshResult(error=str(exc))
            current = self.deployment
            held = {m.version: m for m in (current.champion, current.challenger) if m is not None}
            chosen, refused = {}, []
            for alias in ALIASES:
                chosen[alias], refusal = self._choose(alias, wanted[alias], current.model(alias), held, force)
                if refusal is not None:
                    refused.append(refusal)
                if chosen[alias] is not None:
                    held[chosen[alias].version] = chosen[alias]
            swapped = {
                alias: getattr(chosen[alias], "version", None)
                for alias in ALIASES
                if chosen[alias] is not current.model(alias)
            }
            if swapped:
                self.deployment = replace(current, champion=chosen[CHAMPION], challenger=chosen[CHALLENGER])
                for alias, version in swapped.items():
                    was = current.model(alias)
                    self.metrics.swaps.labels(alias).inc()
                    self.metrics.served(alias, version)
                    log.info(
                        "serving: %s %s -> %s",
                        alias,
                        f"v{was.version}" if was else "none",
                        f"v{version}" if version is not None else "none",
                    )
            self.last_refresh = datetime.now(UTC)
            return RefreshResult(swapped, refused)

    def _choose(
        self, alias: str, info: VersionInfo | None, serving: ServedModel | None, held: dict, force: bool
    ) -> tuple[ServedModel | None, Refusal | None]:
        """The model ``alias`` should serve after this refresh, and the refusal of the version it points at."""
        if info is None:
            if alias == CHAMPION and serving is not None:
                log.warning("serving: no '%s' alias in the registry: v%d keeps serving", alias, serving.version)
                return serving, None
            return None, None
        if info.version in held:
            return held[info.version], None
        # a refused version is not loaded again by the poll, unless the service has no champion at all
        retry = force or (alias == CHAMPION and serving is None)
        if info.version in self.refusals and not retry:
            return serving, None
        try:
            loaded = load_served(self.models, info, self.canary)
        except Exception as exc:  # whatever a broken artifact raises: refuse the version, keep serving
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
            refusal = Refusal(alias, info.version, reason, datetime.now(UTC))
            self.refusals[info.version] = refusal
            self.metrics.refused.labels(alias, str(info.version)).inc()
            keeping = f"v{serving.version} keeps serving" if serving else "nothing to serve yet"
            log.error("serving: refused %s v%d as %s (%s): %s", info.name, info.version, alias, keeping, reason)
            return serving, refusal
        self.refusals.pop(info.version, None)
        return loaded, None
