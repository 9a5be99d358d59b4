"""The service's Prometheus metrics, in a registry of its own per app (several apps in one process, as in
tests, never share counters), and the ASGI middleware that counts every request.

=============================================  ============================================================
metric                                         what
=============================================  ============================================================
``churnguard_serving_requests_total``          requests by ``route``, ``status``, and the ``alias`` and
                                               ``version`` that answered (empty when none did; ``mixed``
                                               for a split batch answered by both)
``churnguard_serving_request_seconds``         latency by ``route``, until the response's last byte (shadow
                                               scoring runs after it)
``churnguard_serving_scored_rows_total``       rows scored by ``alias``, ``version`` and ``role``
                                               (``answer``: returned; ``shadow``: scored beside the answer)
``churnguard_serving_scoring_errors_total``    a challenger's scorings that failed, by ``version`` and
                                               ``role`` (the champion answered instead, or beside nothing)
``churnguard_serving_loaded_version``          the version each alias serves now
``churnguard_serving_swaps_total``             versions swapped in, by ``alias``
``churnguard_serving_refused_versions_total``  versions refused (failed to load, or to score the canary
                                               rows), by ``alias`` and ``version``
``churnguard_serving_refresh_errors_total``    alias polls the registry could not answer
=============================================  ============================================================
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Latency buckets (seconds): the targets are a few ms for one row, tens of ms for a batch.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class ServingMetrics:
    """The metrics above, registered in ``self.registry``."""

    def __init__(self) -> None:
        self.registry = reg = CollectorRegistry()
        self.requests = Counter(
            "churnguard_serving_requests",
            "Requests answered, by route, status and the model that answered.",
            ["route", "status", "alias", "version"],
            registry=reg,
        )
        self.latency = Histogram(
            "churnguard_serving_request_seconds",
            "Time to the response's last byte, by route.",
            ["route"],
            buckets=BUCKETS,
            registry=reg,
        )
        self.scored = Counter(
            "churnguard_serving_scored_rows",
            "Rows scored, by alias, version and role (answer, shadow).",
            ["alias", "version", "role"],
            registry=reg,
        )
        self.scoring_errors = Counter(
            "churnguard_serving_scoring_errors",
            "A challenger's scorings that failed, by version and role (the champion answered).",
            ["version", "role"],
            registry=reg,
        )
        self.loaded = Gauge("churnguard_serving_loaded_version", "Version served, by alias.", ["alias"], registry=reg)
        self.swaps = Counter("churnguard_serving_swaps", "Versions swapped in, by alias.", ["alias"], registry=reg)
        self.refused = Counter(
            "churnguard_serving_refused_versions",
            "Versions refused: failed to load or to score the canary rows.",
            ["alias", "version"],
            registry=reg,
        )
        self.refresh_errors = Counter(
            "churnguard_serving_refresh_errors", "Alias polls the registry could not answer.", registry=reg
        )

    def served(self, alias: str, version: int | None) -> None:
        """``alias`` now serves ``version`` (None: nothing)."""
        if version is None:
            try:
                self.loaded.remove(alias)
            except KeyError:
                pass
        else:
            self.loaded.labels(alias).set(version)


class MeteredApp:
    """ASGI middleware: counts each HTTP request by its route's path (``unmatched`` for any other, so scans
    of random paths add no series) and the ``alias``/``version`` its handler left in ``request.state``."""

    def __init__(self, app, metrics: ServingMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status, ended = time.perf_counter(), [500], [None]

        async def send_metered(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                ended[0] = time.perf_counter()
            await send(message)

        try:
            await self.app(scope, receive, send_metered)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            state = scope.get("state") or {}
            elapsed = (ended[0] or time.perf_counter()) - started
            self.metrics.requests.labels(
                route, str(status[0]), state.get("alias", ""), str(state.get("version", ""))
            ).inc()
            self.metrics.latency.labels(route).observe(elapsed)
