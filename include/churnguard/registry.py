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
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from churnguard.crashpoints import crash_point
from churnguard.settings import get_settings

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"
FINGERPRINT_TAG = "churnguard.fingerprint"
POST_CHANGE_TAG = "post_change_from"  # a challenger validated on labelled days from this change day on
REFRESH_TAG = "refresh_of"  # a post-change challenger trained to replace this post-change champion (a version)
UNREGISTERED_TAG = "churnguard.unregistered"  # on a retrain run whose model was not registered: why
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


def configure_mlflow() -> str:
    """Point MLflow at the configured tracking/registry store and experiment; returns the experiment id."""
    experiment = get_settings().mlflow_experiment
    return _retrying(f"get_experiment_by_name({experiment})", _configure)


def _configure() -> str:
    import mlflow

    for var, value in MLFLOW_HTTP_DEFAULTS.items():
        os.environ.setdefault(var, value)
    settings = get_settings()
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)
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


def client():
    from mlflow import MlflowClient

    configure_mlflow()
    return MlflowClient()


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
        raise RegistryError(_failure_line("search_registered_models(max_results=1)", 1, exc)) from exc


def _retrying(call: str, attempt: Callable[[], T], absent: Callable[[Exception], bool] | None = None) -> T | None:
    """``attempt()``, retried with backoff while it fails transiently; None when ``absent(error)``."""
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
                raise RegistryError(_failure_line(call, number, exc)) from exc
            log.warning(
                "MLflow %s failed (attempt %d/%d), retrying in %.1f s: %s",
                call,
                number,
                RETRY_ATTEMPTS,
                delay,
                _reason(exc),
            )
            time.sleep(delay)


def _client_call(method: str, *args, absent: Callable[[Exception], bool] | None = None):
    """``MlflowClient().<method>(*args)`` on the configured store, with ``_retrying``'s retries."""

    def attempt():
        from mlflow import MlflowClient

        _configure()
        return getattr(MlflowClient(), method)(*args)

    return _retrying(f"{method}({', '.join(str(a) for a in args)})", attempt, absent)


def _transient(exc: Exception) -> bool:
    """Whether retrying can help: unreachable, timed out, dropped, 5xx or throttled; not a definite answer."""
    from mlflow.exceptions import ERROR_CODE_TO_HTTP_STATUS, MlflowException

    if isinstance(exc, MlflowException):
        return ERROR_CODE_TO_HTTP_STATUS.get(exc.error_code, 500) not in _NOT_TRANSIENT_STATUS
    import requests

    return isinstance(exc, ConnectionError | TimeoutError | requests.ConnectionError | requests.Timeout)


def _absent(exc: Exception) -> bool:
    return getattr(exc, "error_code", None) == "RESOURCE_DOES_NOT_EXIST"


def _failure_line(call: str, attempts: int, exc: Exception) -> str:
    uri = re.sub(r"//[^/@]*@", "//", get_settings().mlflow_tracking_uri)  # never print credentials
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


@dataclass(frozen=True)
class VersionInfo:
    name: str
    version: int
    run_id: str
    tags: dict

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def to_dict(self) -> dict:
        return {"name": self.name, "version": self.version, "run_id": self.run_id, "tags": self.tags}


def _info(mv) -> VersionInfo:
    return VersionInfo(mv.name, int(mv.version), mv.run_id, dict(mv.tags or {}))


def version_by_alias(name: str, alias: str) -> VersionInfo | None:
    """The version an alias points at; None only when MLflow says the alias (or the model) does not exist.

    Raises ``RegistryError`` when the registry cannot answer.
    """

    def alias_absent(exc: Exception) -> bool:
        # MLflow answers a missing alias of an existing model with INVALID_PARAMETER_VALUE (SQL and REST
        # stores alike), which it also uses for malformed names: only its "not found" text means absent.
        return _absent(exc) or (
            getattr(exc, "error_code", None) == "INVALID_PARAMETER_VALUE" and f"alias {alias} not found" in str(exc)
        )

    mv = _client_call("get_model_version_by_alias", name, alias, absent=alias_absent)
    return None if mv is None else _info(mv)


def find_version(name: str, fingerprint: str) -> VersionInfo | None:
    """An existing version trained from exactly the same inputs (same fingerprint tag), if any.

    Raises ``RegistryError`` when the registry cannot answer.
    """
    mv = _retrying(
        f"search_model_versions({_fingerprint_filter(name, fingerprint)})",
        lambda: _oldest_with_fingerprint(name, fingerprint),
    )
    return None if mv is None else _info(mv)


def _fingerprint_filter(name: str, fingerprint: str) -> str:
    return f"name = '{name}' and tag.`{FINGERPRINT_TAG}` = '{fingerprint}'"


def _oldest_with_fingerprint(name: str, fingerprint: str):
    """One attempt: the first version of ``name`` carrying ``fingerprint`` (MLflow's object), or None."""
    from mlflow import MlflowClient

    _configure()
    found = MlflowClient().search_model_versions(_fingerprint_filter(name, fingerprint))
    return min(found, key=lambda v: int(v.version)) if found else None


def register_run_model(run_id: str, name: str, tags: dict[str, str]) -> VersionInfo:
    """Register the model logged in ``run_id`` as a new version of ``name`` and wait until it is READY.

    With a fingerprint tag, every attempt first looks the fingerprint up and returns the version found: a
    registration whose answer was lost (and is retried) never leaves a second version of the same model.
    """
    import mlflow

    fingerprint = tags.get(FINGERPRINT_TAG)

    def attempt():
        _configure()
        if fingerprint:
            mv = _oldest_with_fingerprint(name, fingerprint)
            if mv is not None:
                log.info("%s v%s already carries fingerprint %s: not registering again", name, mv.version, fingerprint)
                return mv
        return mlflow.register_model(
            _run_model_uri(run_id), name, await_registration_for=300, tags={k: str(v) for k, v in tags.items()}
        )

    mv = _retrying(f"register_model(run {run_id}, {name})", attempt)
    if mv.status != "READY":
        raise RuntimeError(f"model {name} version {mv.version} registration ended as {mv.status}")
    crash_point("registry.version_registered")
    return _info(mv)


def _run_model_uri(run_id: str) -> str:
    import mlflow

    models = mlflow.search_logged_models(filter_string=f"source_run_id = '{run_id}'", output_format="list")
    if not models:
        raise LookupError(f"run {run_id} has no logged model")
    return models[0].model_uri


def require_ready(name: str, version: int) -> VersionInfo:
    """The version, when it exists and its registration finished (READY): what an alias may point at.

    Raises ``LookupError`` when MLflow says there is no such version, ``RuntimeError`` when it is not READY.
    """
    mv = _client_call("get_model_version", name, str(version), absent=_absent)
    if mv is None:
        raise LookupError(f"{name} has no version {version}")
    if mv.status != "READY":
        raise RuntimeError(f"{name} v{version} is not ready to serve: status {mv.status}")
    return _info(mv)


def set_alias(name: str, alias: str, version: int) -> None:
    """Point ``alias`` at ``version``, which must exist and be READY (see ``require_ready``)."""
    require_ready(name, version)
    _client_call("set_registered_model_alias", name, alias, str(version))
    crash_point("registry.alias_set")
    log.info("alias %s -> %s v%s", alias, name, version)


def delete_alias(name: str, alias: str) -> None:
    """Remove ``alias`` from ``name`` (callers remove only an alias they just read)."""
    _client_call("delete_registered_model_alias", name, alias)
    log.info("alias %s removed from %s", alias, name)


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


def load_logged_model(run_id: str) -> LoggedModel:
    """The churn model logged in ``run_id``: pipeline, threshold and features, all from the run."""

    def attempt() -> LoggedModel:
        import mlflow

        _configure()
        run = mlflow.get_run(run_id)
        features = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/features.json")["features"]
        pipeline = mlflow.sklearn.load_model(_run_model_uri(run_id))
        return LoggedModel(
            pipeline, float(run.data.params["threshold"]), features, int(run.data.params["best_iteration"])
        )

    return _retrying(f"load_model(run {run_id})", attempt)


def version_run_id(name: str, version: int) -> str:
    """The run a version was registered from."""
    return _client_call("get_model_version", name, str(version)).run_id


def logged_artifact(mlflow_client, run_id: str, path: str, folder: str) -> str | None:
    """The top-level artifact ``path`` of ``run_id`` downloaded into ``folder`` (its local path) through
    ``mlflow_client``, or None when the run logged no such artifact. Absence is read from the run's artifact
    listing, so a server that fails raises instead of passing for "none logged"."""
    if path not in {a.path for a in mlflow_client.list_artifacts(run_id)}:
        return None
    return mlflow_client.download_artifacts(run_id, path, folder)


def download_run_artifact(run_id: str, path: str, folder: str) -> str | None:
    """:func:`logged_artifact` on the configured store, retried; a server that keeps failing raises
    ``RegistryError``."""

    def attempt() -> str | None:
        from mlflow import MlflowClient

        _configure()
        return logged_artifact(MlflowClient(), run_id, path, folder)

    return _retrying(f"download_run_artifact({run_id}, {path})", attempt)


def json_tag(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
