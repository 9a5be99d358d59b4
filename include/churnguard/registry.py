"""The MLflow model registry: log, register, alias (``champion``, ``challenger``, ``previous``), load.

Stages are deprecated in MLflow 3; aliases are the only pointers used. An alias is set only on a version
whose registration finished (status READY), so ``champion`` never points at nothing.

Registry errors are errors: a lookup returns None only when MLflow answers that the alias, version or
model does not exist. A call that fails for any other reason (server unreachable, 5xx, timeout, dropped
connection) is tried up to ``RETRY_ATTEMPTS`` times with a doubling backoff (no new attempt after
``RETRY_DEADLINE_S``), then raises one ``RegistryError`` naming the server and the call. MLflow's own HTTP
retries are turned off (see ``MLFLOW_HTTP_DEFAULTS``), so an unreachable server is reported in seconds.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from typing import TYPE_CHECKING, TypeVar

from churnguard.crashpoints import crash_point
from churnguard.settings import get_settings

if TYPE_CHECKING:
    from churnguard.settings import Settings

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"
# Tags of MLflow runs. A version's tags are the fields of VersionTags / FailureVersionTags (below): every tag
# churnguard writes or reads is named in this module and nowhere else.
FINGERPRINT_TAG = "churnguard.fingerprint"  # a run's (and its version's) training inputs: see find_version
KIND_TAG = "churnguard.kind"  # what started the run: one of the *_RUN values
DATASET_TAG = "churnguard.dataset"  # a bootstrap run's dataset config
DS_TAG = "churnguard.ds"  # a daily run's batch date
UNREGISTERED_TAG = "churnguard.unregistered"  # on a retrain run whose model was not registered: why
DATA_VERSION_TAG = "data_version"  # what a churn model was trained on
TRIGGER_TAG = "trigger"  # why a retrain run was started
DATASET_VERSION_TAG = "dataset_version"  # the trajectories a failure model was trained on
SCORED_WITH_TAG = "champion"  # on a failure-model run: the churn champion its trajectories were scored with
DECISION_TAG, DRIFT_SEVERITY_TAG, DRIFT_REPORT_TAG = "decision", "drift_severity", "drift_report"  # daily run
BOOTSTRAP_RUN, RETRAIN_RUN, DAILY_RUN, FAILURE_RUN = "bootstrap", "retrain", "daily", "failure-model"
# Types inside the churn pipeline that the skops loader must be told to trust.
TRUSTED_TYPES = [
    "churnguard.models.NumericCleaner",
    "churnguard.failure.model.MonotoneLogistic",
    "xgboost.sklearn.XGBClassifier",
    "xgboost.core.Booster",
    "builtins.bytearray",
]

# What a logged model needs to load and predict. Named, so MLflow does not infer them: inference runs the
# model in a subprocess (~7 s per logged model) and also captured whatever the caller had imported (pytest).
MODEL_PACKAGES = ("churnguard", "numpy", "pandas", "scikit-learn", "scipy", "skops", "xgboost")
RETRY_ATTEMPTS = 4
RETRY_BACKOFF_S = 0.5  # sleeps 0.5, 1, 2 s between the attempts: ~3.5 s in all against a refusing server
RETRY_DEADLINE_S = 20.0  # no new attempt after this; with the 10 s request timeout a stalled server costs <= 30 s
# MLflow's HTTP client retries 7 times with backoff factor 2 by default (~280 s against a dead server) and
# retries POSTs too (a dropped answer to "create version" would register a duplicate): ours is the retry
# that counts. Defaults only: a value set in the environment wins.
MLFLOW_HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
# MLflow error codes whose HTTP status says "the server is fine, the answer is no": never retried.
_NOT_TRANSIENT_STATUS = frozenset({400, 401, 403, 404, 409, 501})

T = TypeVar("T")


class RegistryError(RuntimeError):
    """The MLflow registry could not answer a call (after retries when the failure looked transient).

    Never means "absent": lookups return None for that. The message is one line naming the server and
    the call, e.g. ``MLflow at http://127.0.0.1:5000 failed get_model_version_by_alias(churn-model,
    champion) after 4 attempts: Connection refused``.
    """


def check_connection(timeout_s: float = 5.0) -> None:
    """Fail fast when the registry cannot answer: one request, no retry, at most ``timeout_s`` seconds.

    Raises ``RegistryError``; returns None when the server listed (at most) one registered model.
    ``timeout_s`` bounds an HTTP server; a database store fails on its driver's own connect timeout.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    uri = get_settings().mlflow_tracking_uri
    try:
        if uri.startswith(("http://", "https://")):
            from mlflow.utils.credentials import get_default_host_creds
            from mlflow.utils.rest_utils import http_request_safe

            # The REST endpoint of MlflowClient.search_registered_models, without MLflow's retries.
            http_request_safe(
                get_default_host_creds(uri),
                "/api/2.0/mlflow/registered-models/search",
                "GET",
                max_retries=0,
                timeout=timeout_s,
                params={"max_results": 1},
            )
        else:
            MlflowClient(tracking_uri=uri, registry_uri=uri).search_registered_models(max_results=1)
    except (MlflowException, OSError) as exc:
        raise RegistryError(_failure_line(uri, "search_registered_models(max_results=1)", 1, exc)) from exc


def _retrying(
    uri: str, call: str, attempt: Callable[[], T], absent: Callable[[Exception], bool] | None = None
) -> T | None:
    """``attempt()`` against the server at ``uri``, retried with backoff while it fails transiently; None
    when ``absent(error)``."""
    from mlflow.exceptions import MlflowException

    started = time.monotonic()
    for number in itertools.count(1):
        try:
            return attempt()
        except (MlflowException, OSError) as exc:
            if absent is not None and absent(exc):
                return None
            delay = RETRY_BACKOFF_S * 2 ** (number - 1)
            out_of_time = time.monotonic() + delay - started > RETRY_DEADLINE_S
            if number == RETRY_ATTEMPTS or out_of_time or not _transient(exc):
                raise RegistryError(_failure_line(uri, call, number, exc)) from exc
            log.warning(
                "MLflow %s failed (attempt %d/%d), retrying in %.1f s: %s",
                call,
                number,
                RETRY_ATTEMPTS,
                delay,
                _reason(exc),
            )
            time.sleep(delay)


def _transient(exc: Exception) -> bool:
    """Whether retrying can help: unreachable, timed out, dropped, 5xx or throttled; not a definite answer."""
    from mlflow.exceptions import ERROR_CODE_TO_HTTP_STATUS, MlflowException

    if isinstance(exc, MlflowException):
        return ERROR_CODE_TO_HTTP_STATUS.get(exc.error_code, 500) not in _NOT_TRANSIENT_STATUS
    import requests

    return isinstance(exc, ConnectionError | TimeoutError | requests.ConnectionError | requests.Timeout)


def _absent(exc: Exception) -> bool:
    return getattr(exc, "error_code", None) == "RESOURCE_DOES_NOT_EXIST"


def _failure_line(uri: str, call: str, attempts: int, exc: Exception) -> str:
    uri = re.sub(r"//[^/@]*@", "//", uri)  # never print credentials
    return f"MLflow at {uri} failed {call} after {attempts} attempt{'s' if attempts > 1 else ''}: {_reason(exc)}"


def _reason(exc: Exception) -> str:
    """The useful part of an MLflow/requests error, on one line (their texts nest the cause deep inside)."""
    text = " ".join(str(exc).split())
    for pattern in (
        r"\[Errno -?\d+\] ([^'\"()]+)",
        r"RemoteDisconnected\('([^']+)'",
        r"(Read timed out)",
        r"too many (\d\d\d) error responses",
    ):
        found = re.search(pattern, text)
        if found:
            reason = found.group(1).strip()
            return f"HTTP {reason}" if reason.isdigit() else reason
    return text[:300] or type(exc).__name__


def _float(text: str) -> float | None:
    return None if text == "None" else float(text)


def _day(text: str) -> date:
    return date.fromisoformat(text)


@dataclass(frozen=True)
class TrainingWindow:
    """The labelled days a retrained version was trained and held out on (``change_day``: the first
    post-change day, after a change); also what a retrain step reports as its ``window``. Retraining writes
    every day but ``change_day`` (set after a change only); a version tagged by hand may hold some."""

    train_from: date | None = None
    train_to: date | None = None
    holdout_from: date | None = None
    holdout_to: date | None = None
    change_day: date | None = None

    def to_dict(self) -> dict[str, str]:
        """As tags (and a step result): ISO dates by tag name, the days that are set."""
        days = {name: getattr(self, name) for name in WINDOW_TAGS}
        return {name: day.isoformat() for name, day in days.items() if day is not None}

    @classmethod
    def from_dict(cls, tags: Mapping[str, str]) -> TrainingWindow | None:
        """The window in ``tags``, or None when they hold none of its days (a bootstrap version)."""
        days = {name: _day(tags[name]) for name in WINDOW_TAGS if tags.get(name)}
        return cls(**days) if days else None


WINDOW_TAGS = ("train_from", "train_to", "change_day", "holdout_from", "holdout_to")
CANDIDATE_AUC_PREFIX = "candidate_validation_auc."


@dataclass(frozen=True)
class VersionTags:
    """The tags of a churn model version, typed: written once at registration (``to_mlflow``), parsed once
    when read (``from_mlflow``). Tags nobody here wrote are kept, as text, in ``extra``."""

    fingerprint: str | None = None  # FINGERPRINT_TAG: trained from exactly these inputs
    trigger: str | None = None  # "bootstrap", or why it was retrained
    threshold: float | None = None  # its decision threshold
    reference_auc: float | None = None  # the AUC and F1 it is held to (test split, or retrain holdout)
    reference_f1: float | None = None
    champion_holdout_auc: float | None = None  # the champion of its day on the same holdout
    window: TrainingWindow | None = None
    post_change_from: date | None = None  # validated on labelled days from this change day on
    refresh_of: int | None = None  # a post-change challenger trained to replace this post-change champion
    candidate: str | None = None  # the training set chosen after a change (churnguard.retrain)
    candidate_validation_auc: dict[str, float] | None = None  # every candidate's validation AUC
    continued_from: int | None = None  # the champion whose boosting it continues
    extra: dict[str, str] = field(default_factory=dict)

    def to_mlflow(self) -> dict[str, str]:
        """The tags as MLflow stores them (text); fields that are None are left out."""
        text = {
            FINGERPRINT_TAG: self.fingerprint,
            "trigger": self.trigger,
            "threshold": _fixed(self.threshold, 6),
            "reference_auc": _fixed(self.reference_auc, 6),
            "reference_f1": _fixed(self.reference_f1, 6),
            "champion_holdout_auc": _fixed(self.champion_holdout_auc, 6),
            **(self.window.to_dict() if self.window else {}),
            "post_change_from": self.post_change_from.isoformat() if self.post_change_from else None,
            "candidate": self.candidate,
            **{f"{CANDIDATE_AUC_PREFIX}{k}": f"{v:.4f}" for k, v in (self.candidate_validation_auc or {}).items()},
            "continued_from": None if self.continued_from is None else str(self.continued_from),
            "refresh_of": None if self.refresh_of is None else str(self.refresh_of),
        }
        return {**self.extra, **{k: v for k, v in text.items() if v is not None}}

    @classmethod
    def from_mlflow(cls, tags: Mapping[str, str]) -> VersionTags:
        tags = dict(tags or {})
        aucs = {
            k.removeprefix(CANDIDATE_AUC_PREFIX): float(v)
            for k, v in tags.items()
            if k.startswith(CANDIDATE_AUC_PREFIX)
        }
        known = {FINGERPRINT_TAG, *(f.name for f in fields(cls)), *WINDOW_TAGS}
        return cls(
            fingerprint=tags.get(FINGERPRINT_TAG),
            trigger=tags.get("trigger"),
            threshold=_maybe(tags, "threshold", _float),
            reference_auc=_maybe(tags, "reference_auc", _float),
            reference_f1=_maybe(tags, "reference_f1", _float),
            champion_holdout_auc=_maybe(tags, "champion_holdout_auc", _float),
            window=TrainingWindow.from_dict(tags),
            post_change_from=_maybe(tags, "post_change_from", _day),
            refresh_of=_maybe(tags, "refresh_of", int),
            candidate=tags.get("candidate"),
            candidate_validation_auc=aucs or None,
            continued_from=_maybe(tags, "continued_from", int),
            extra={k: v for k, v in tags.items() if k not in known and not k.startswith(CANDIDATE_AUC_PREFIX)},
        )

    def training_window(self) -> dict[str, str]:
        """The data window as ISO dates by tag name (what the health pages show), the change day last."""
        window = self.window.to_dict() if self.window else {}
        out = {
            k: window[k] for k in ("train_from", "train_to", "holdout_from", "holdout_to", "change_day") if k in window
        }
        if self.post_change_from:
            out["post_change_from"] = self.post_change_from.isoformat()
        return out


@dataclass(frozen=True)
class FailureVersionTags:
    """The tags of a failure-model version, typed (see :class:`VersionTags`)."""

    kind: str | None = None  # the estimator family
    threshold: float | None = None  # its alarm threshold
    eval_auroc: float | None = None  # AUROC on the held-out trajectories
    dataset_version: str | None = None  # DATASET_VERSION_TAG: the trajectories it was trained on
    horizon_days: int | None = None
    tolerance: float | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def to_mlflow(self) -> dict[str, str]:
        text = {
            "kind": self.kind,
            "threshold": _fixed(self.threshold, 2),
            "eval_auroc": None if self.eval_auroc is None else str(self.eval_auroc),
            DATASET_VERSION_TAG: self.dataset_version,
            "horizon_days": None if self.horizon_days is None else str(self.horizon_days),
            "tolerance": None if self.tolerance is None else str(self.tolerance),
        }
        return {**self.extra, **{k: v for k, v in text.items() if v is not None}}

    @classmethod
    def from_mlflow(cls, tags: Mapping[str, str]) -> FailureVersionTags:
        tags = dict(tags or {})
        known = {f.name for f in fields(cls)}
        return cls(
            kind=tags.get("kind"),
            threshold=_maybe(tags, "threshold", _float),
            eval_auroc=_maybe(tags, "eval_auroc", _float),
            dataset_version=tags.get(DATASET_VERSION_TAG),
            horizon_days=_maybe(tags, "horizon_days", int),
            tolerance=_maybe(tags, "tolerance", _float),
            extra={k: v for k, v in tags.items() if k not in known},
        )


Tags = VersionTags | FailureVersionTags


def _fixed(value: float | None, digits: int) -> str | None:
    return None if value is None else f"{value:.{digits}f}"


def _maybe(tags: Mapping[str, str], name: str, parse: Callable[[str], T]) -> T | None:
    text = tags.get(name)
    return parse(text) if text else None


@dataclass(frozen=True)
class VersionInfo:
    name: str
    version: int
    run_id: str
    tags: Tags

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def to_dict(self) -> dict:
        return {"name": self.name, "version": self.version, "run_id": self.run_id, "tags": self.tags.to_mlflow()}


# (tracking URI, experiment) -> experiment id: MLflow is configured (experiment found or created) once per
# process and server, however many ModelRegistry objects are built on it.
_configured: dict[tuple[str, str], str] = {}
_active: list[tuple[str, str] | None] = [None]  # the key MLflow's process-wide tracking URI/experiment are set to


def forget_configured() -> None:
    """Configure MLflow again on the next call (a store replaced under the same URI, in tests)."""
    _configured.clear()
    _active[0] = None


class ModelRegistry:
    """One registered model in the MLflow registry, in the manner of a provider hook: built once with the
    model's name (and the settings), it configures MLflow on first use (once per process and server), owns
    the client, and remembers what cannot change.

    A version is immutable, and its tags are written only when it is registered: ``require_ready`` and
    ``version_run_id`` answer from memory after the first time. Aliases are never remembered: the promotion
    path reads them under its lock and must see the truth.
    """

    def __init__(self, name: str, settings: Settings | None = None, tag_type: type[Tags] = VersionTags) -> None:
        self.name, self.settings, self.tag_type = name, settings or get_settings(), tag_type
        self.uri = self.settings.mlflow_tracking_uri
        self._client = None
        self._ready: dict[int, VersionInfo] = {}
        self._run_ids: dict[int, str] = {}
        for var, value in MLFLOW_HTTP_DEFAULTS.items():
            os.environ.setdefault(var, value)

    def __repr__(self) -> str:
        return f"ModelRegistry({self.name!r} at {re.sub(r'//[^/@]*@', '//', self.uri)})"

    # -- the server ----------------------------------------------------------------------------------------
    def configure(self) -> str:
        """Point MLflow's fluent API (runs, logged models) at this registry's store and experiment; returns the
        experiment id. The experiment is looked up (or created) once per process and server."""
        import mlflow

        key = (self.uri, self.settings.mlflow_experiment)
        if key in _configured and _active[0] == key and mlflow.get_tracking_uri() == self.uri:
            return _configured[key]
        experiment_id = self._retrying(f"get_experiment_by_name({key[1]})", lambda: self._configure(key))
        _configured[key], _active[0] = experiment_id, key
        return experiment_id

    def _configure(self, key: tuple[str, str]) -> str:
        import mlflow

        mlflow.set_tracking_uri(self.uri)
        mlflow.set_registry_uri(self.uri)
        if key in _configured:
            mlflow.set_experiment(experiment_id=_configured[key])
            return _configured[key]
        settings = self.settings
        experiment = mlflow.get_experiment_by_name(settings.mlflow_experiment)
        if experiment is None:
            try:
                mlflow.create_experiment(settings.mlflow_experiment, artifact_location=settings.mlflow_artifact_uri)
            except mlflow.exceptions.MlflowException as exc:
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":  # not created concurrently by another task
                    raise
            experiment = mlflow.get_experiment_by_name(settings.mlflow_experiment)
        # Always activate it: a run started on the Default experiment would put artifacts under ./mlruns.
        mlflow.set_experiment(experiment_id=experiment.experiment_id)
        return experiment.experiment_id

    @property
    def client(self):
        """The ``MlflowClient`` of this registry's store (MLflow's own: no retries of ours)."""
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        return self._client

    def _retrying(self, call: str, attempt: Callable[[], T], absent: Callable[[Exception], bool] | None = None):
        return _retrying(self.uri, call, attempt, absent)

    def _call(self, method: str, *args, absent: Callable[[Exception], bool] | None = None):
        """``client.<method>(*args)``, with ``_retrying``'s retries."""
        call = f"{method}({', '.join(str(a) for a in args)})"
        return self._retrying(call, lambda: getattr(self.client, method)(*args), absent)

    def _info(self, mv) -> VersionInfo:
        return VersionInfo(mv.name, int(mv.version), mv.run_id, self.tag_type.from_mlflow(mv.tags or {}))

    # -- versions and aliases ------------------------------------------------------------------------------
    def version_by_alias(self, alias: str) -> VersionInfo | None:
        """The version an alias points at now; None only when MLflow says the alias (or the model) does not
        exist. Never remembered. Raises ``RegistryError`` when the registry cannot answer."""

        def alias_absent(exc: Exception) -> bool:
            # MLflow answers a missing alias of an existing model with INVALID_PARAMETER_VALUE (SQL and REST
            # stores alike), which it also uses for malformed names: only its "not found" text means absent.
            return _absent(exc) or (
                getattr(exc, "error_code", None) == "INVALID_PARAMETER_VALUE" and f"alias {alias} not found" in str(exc)
            )

        mv = self._call("get_model_version_by_alias", self.name, alias, absent=alias_absent)
        return None if mv is None else self._info(mv)

    def find_version(self, fingerprint: str) -> VersionInfo | None:
        """An existing version trained from exactly the same inputs (same fingerprint tag), if any.

        Raises ``RegistryError`` when the registry cannot answer.
        """
        mv = self._retrying(
            f"search_model_versions({self._fingerprint_filter(fingerprint)})",
            lambda: self._oldest_with_fingerprint(fingerprint),
        )
        return None if mv is None else self._info(mv)

    def _fingerprint_filter(self, fingerprint: str) -> str:
        return f"name = '{self.name}' and tag.`{FINGERPRINT_TAG}` = '{fingerprint}'"

    def _oldest_with_fingerprint(self, fingerprint: str):
        """One attempt: the first version carrying ``fingerprint`` (MLflow's object), or None."""
        found = self.client.search_model_versions(self._fingerprint_filter(fingerprint))
        return min(found, key=lambda v: int(v.version)) if found else None

    def register_run_model(self, run_id: str, tags: Tags) -> VersionInfo:
        """Register the model logged in ``run_id`` as a new version and wait until it is READY.

        With a fingerprint tag, every attempt first looks the fingerprint up and returns the version found: a
        registration whose answer was lost (and is retried) never leaves a second version of the same model.
        """
        import mlflow

        fingerprint = getattr(tags, "fingerprint", None)
        text = tags.to_mlflow()

        def attempt():
            self.configure()
            if fingerprint:
                mv = self._oldest_with_fingerprint(fingerprint)
                if mv is not None:
                    log.info(
                        "%s v%s already carries fingerprint %s: not registering again",
                        self.name,
                        mv.version,
                        fingerprint,
                    )
                    return mv
            return mlflow.register_model(self.run_model_uri(run_id), self.name, await_registration_for=300, tags=text)

        mv = self._retrying(f"register_model(run {run_id}, {self.name})", attempt)
        if mv.status != "READY":
            raise RuntimeError(f"model {self.name} version {mv.version} registration ended as {mv.status}")
        crash_point("registry.version_registered")
        info = self._info(mv)
        self._ready[info.version] = info  # its tags are the ones just written (or found): nothing to invalidate
        return info

    def require_ready(self, version: int) -> VersionInfo:
        """The version, when it exists and its registration finished (READY): what an alias may point at.
        Remembered once READY (a version never changes).

        Raises ``LookupError`` when MLflow says there is no such version, ``RuntimeError`` when it is not READY.
        """
        version = int(version)
        if version not in self._ready:
            mv = self._call("get_model_version", self.name, str(version), absent=_absent)
            if mv is None:
                raise LookupError(f"{self.name} has no version {version}")
            if mv.status != "READY":
                raise RuntimeError(f"{self.name} v{version} is not ready to serve: status {mv.status}")
            self._ready[version] = self._info(mv)
        return self._ready[version]

    def version_run_id(self, version: int) -> str:
        """The run a version was registered from (remembered)."""
        version = int(version)
        if version in self._ready:
            return self._ready[version].run_id
        if version not in self._run_ids:
            self._run_ids[version] = self._call("get_model_version", self.name, str(version)).run_id
        return self._run_ids[version]

    def set_alias(self, alias: str, version: int) -> None:
        """Point ``alias`` at ``version``, which must exist and be READY (see ``require_ready``). Only
        :mod:`churnguard.promotion` moves aliases, under its lock."""
        self.require_ready(version)
        self._call("set_registered_model_alias", self.name, alias, str(version))
        crash_point("registry.alias_set")
        log.info("alias %s -> %s v%s", alias, self.name, version)

    def delete_alias(self, alias: str) -> None:
        """Remove ``alias`` (callers remove only an alias they just read)."""
        self._call("delete_registered_model_alias", self.name, alias)
        log.info("alias %s removed from %s", alias, self.name)

    # -- runs ----------------------------------------------------------------------------------------------
    def run_model_uri(self, run_id: str) -> str:
        """The URI of the model logged in ``run_id`` (one attempt; callers retry)."""
        import mlflow

        self.configure()
        models = mlflow.search_logged_models(filter_string=f"source_run_id = '{run_id}'", output_format="list")
        if not models:
            raise LookupError(f"run {run_id} has no logged model")
        return models[0].model_uri

    def load_logged_model(self, run_id: str) -> LoggedModel:
        """The churn model logged in ``run_id``: pipeline, threshold and features, all from the run."""

        def attempt() -> LoggedModel:
            import mlflow

            self.configure()
            run = mlflow.get_run(run_id)
            features = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/features.json")["features"]
            pipeline = mlflow.sklearn.load_model(self.run_model_uri(run_id))
            return LoggedModel(
                pipeline, float(run.data.params["threshold"]), features, int(run.data.params["best_iteration"])
            )

        return self._retrying(f"load_model(run {run_id})", attempt)

    def download_run_artifact(self, run_id: str, path: str, folder: str) -> str | None:
        """:func:`logged_artifact` on this registry's store, retried; a server that keeps failing raises
        ``RegistryError``."""
        return self._retrying(
            f"download_run_artifact({run_id}, {path})", lambda: logged_artifact(self.client, run_id, path, folder)
        )


def log_model(pipeline, input_example) -> str:
    """Log a fitted sklearn pipeline (skops format, with signature) in the active run; returns its URI."""
    import mlflow
    from mlflow.models import infer_signature

    signature = infer_signature(input_example, pipeline.predict_proba(input_example)[:, 1])
    info = mlflow.sklearn.log_model(
        pipeline,
        name="model",
        signature=signature,
        input_example=input_example,
        serialization_format="skops",
        skops_trusted_types=TRUSTED_TYPES,
        pip_requirements=model_requirements(),
    )
    return info.model_uri


def model_requirements() -> list[str]:
    """``MODEL_PACKAGES`` pinned to the versions installed here (MLflow adds its own pin)."""
    from importlib.metadata import version

    return [f"{package}=={version(package)}" for package in MODEL_PACKAGES]


@dataclass(frozen=True)
class LoggedModel:
    """What a run logged of a churn model: the fitted pipeline, its decision threshold, the input features and
    the best boosting iteration (``churnguard.training.load_run_model`` makes a ``TrainedModel`` of it)."""

    pipeline: object
    threshold: float
    features: list[str]
    best_iteration: int


def logged_artifact(mlflow_client, run_id: str, path: str, folder: str) -> str | None:
    """The top-level artifact ``path`` of ``run_id`` downloaded into ``folder`` (its local path) through
    ``mlflow_client``, or None when the run logged no such artifact. Absence is read from the run's artifact
    listing, so a server that fails raises instead of passing for "none logged"."""
    if path not in {a.path for a in mlflow_client.list_artifacts(run_id)}:
        return None
    return mlflow_client.download_artifacts(run_id, path, folder)


def json_tag(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
