"""Typed MLflow tags and the registry object: tags round-trip through their MLflow text unchanged, every tag
name is spelled in ``churnguard.registry`` only, and a ``ModelRegistry`` configures MLflow once per server and
answers a version's questions once."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from churnguard import registry
from churnguard.registry import FailureVersionTags, ModelRegistry, TrainingWindow, VersionTags

INCLUDE = Path(__file__).resolve().parents[1] / "include" / "churnguard"

FULL = VersionTags(
    fingerprint="0123456789abcdef",
    trigger="measured failure on 2026-09-14",
    threshold=0.4123456,
    reference_auc=0.8123456,
    reference_f1=0.6,
    champion_holdout_auc=0.75,
    window=TrainingWindow(date(2026, 8, 13), date(2026, 9, 12), date(2026, 9, 13), date(2026, 9, 14), date(2026, 9, 7)),
    post_change_from=date(2026, 9, 7),
    refresh_of=1,
    candidate="recency",
    candidate_validation_auc={"recency": 0.81234, "window": 0.7},
    continued_from=3,
)


def test_version_tags_are_written_as_before_and_read_back_typed():
    text = FULL.to_mlflow()
    assert text == {
        "churnguard.fingerprint": "0123456789abcdef",
        "trigger": "measured failure on 2026-09-14",
        "threshold": "0.412346",
        "reference_auc": "0.812346",
        "reference_f1": "0.600000",
        "champion_holdout_auc": "0.750000",
        "train_from": "2026-08-13",
        "train_to": "2026-09-12",
        "change_day": "2026-09-07",
        "holdout_from": "2026-09-13",
        "holdout_to": "2026-09-14",
        "post_change_from": "2026-09-07",
        "refresh_of": "1",
        "candidate": "recency",
        "candidate_validation_auc.recency": "0.8123",
        "candidate_validation_auc.window": "0.7000",
        "continued_from": "3",
    }
    read = VersionTags.from_mlflow(text)
    assert read.to_mlflow() == text  # the text survives a read and a write unchanged
    assert read.reference_auc == 0.812346 and read.window.change_day == date(2026, 9, 7) and read.refresh_of == 1
    assert read.candidate_validation_auc == {"recency": 0.8123, "window": 0.7}


def test_a_bootstrap_version_has_no_window_and_tags_nobody_typed_are_kept():
    text = {"churnguard.fingerprint": "f", "trigger": "bootstrap", "threshold": "0.300000", "note": "by hand"}
    read = VersionTags.from_mlflow(text)
    assert read.window is None and read.post_change_from is None and read.extra == {"note": "by hand"}
    assert read.to_mlflow() == text and read.training_window() == {}
    partial = VersionTags.from_mlflow({"train_from": "2026-01-01", "train_to": "2026-02-01"})
    assert partial.training_window() == {"train_from": "2026-01-01", "train_to": "2026-02-01"}
    assert TrainingWindow(date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3), date(2026, 1, 4)).to_dict() == {
        "train_from": "2026-01-01",
        "train_to": "2026-01-02",
        "holdout_from": "2026-01-03",
        "holdout_to": "2026-01-04",
    }


def test_failure_version_tags_round_trip():
    tags = FailureVersionTags(
        kind="logistic", threshold=0.35, eval_auroc=0.7712, dataset_version="d1", horizon_days=5, tolerance=0.05
    )
    text = tags.to_mlflow()
    assert text == {
        "kind": "logistic",
        "threshold": "0.35",
        "eval_auroc": "0.7712",
        "dataset_version": "d1",
        "horizon_days": "5",
        "tolerance": "0.05",
    }
    assert FailureVersionTags.from_mlflow(text) == tags


def tag_names() -> set[str]:
    """Every tag name churnguard writes or reads: the typed version tags' and the run tags' constants."""
    failure = FailureVersionTags("k", 0.1, 0.1, "d", 1, 0.1)
    names = set(FULL.to_mlflow()) | set(failure.to_mlflow())
    names |= {value for key, value in vars(registry).items() if key.endswith("_TAG") and isinstance(value, str)}
    return {re.sub(r"^candidate_validation_auc\..*", "candidate_validation_auc.", n) for n in names}


# Tag names that are also the keys of step results, metrics, params or configs (``threshold`` is a param, a
# retrain result carries ``change_day`` and ``refresh_of``): outside registry.py they may appear as such, never
# where a tag is read or written (the patterns below).
ALSO_PLAIN_KEYS = {
    "champion",
    "change_day",
    "candidate",
    "champion_holdout_auc",
    "data_version",
    "dataset_version",
    "decision",
    "drift_report",
    "drift_severity",
    "eval_auroc",
    "horizon_days",
    "kind",
    "reference_auc",
    "reference_f1",
    "refresh_of",
    "threshold",
    "tolerance",
    "trigger",
}
TAG_USES = [
    r"""\btags(?:\.get\(|\[)\s*f?["']""",  # tags.get("name") / tags["name"]
    r"""\bset_(?:model_version_)?tag\([^)]*?["'][\w.]+["']\s*,""",  # client.set_tag(run, "name", ...)
    r"""\btags?\.`(?!\{)""",  # a search filter naming a tag in the text: tags.`name`
    r"""\btags=\{\s*["']""",  # register_model(..., tags={"name": ...})
]


def _sources() -> list[tuple[str, str]]:
    return [
        (str(p.relative_to(INCLUDE)), p.read_text())
        for p in sorted(INCLUDE.rglob("*.py"))
        if p.name != "registry.py" or p.parent != INCLUDE
    ]


def test_no_tag_name_is_spelled_outside_registry():
    strict = tag_names() - ALSO_PLAIN_KEYS
    assert {"churnguard.fingerprint", "churnguard.kind", "post_change_from", "holdout_to"} <= strict
    found = []
    for path, text in _sources():
        for name in strict:
            if re.search(rf"""["']{re.escape(name)}""", text):
                found.append(f"{path}: '{name}'")
        for pattern in TAG_USES:
            found += [f"{path}: {m.group(0)!r}" for m in re.finditer(pattern, text)]
        for block in re.finditer(r"set_tags\(\s*\{(.*?)\}\s*\)", text, re.S):  # mlflow.set_tags({"name": ...})
            found += [
                f"{path}: set_tags {k!r}" for k in re.findall(r"""^\s*["']([\w.]+)["']\s*:""", block.group(1), re.M)
            ]
    assert not found, "tag names belong in churnguard.registry:\n" + "\n".join(sorted(found))


@pytest.mark.integration
def test_a_registry_configures_mlflow_once_per_server_and_remembers_what_a_version_is(monkeypatch):
    import mlflow
    from mlflow import MlflowClient

    registry.forget_configured()
    lookups = []
    real = mlflow.get_experiment_by_name
    monkeypatch.setattr(mlflow, "get_experiment_by_name", lambda name: lookups.append(name) or real(name))
    first = ModelRegistry("churn-model")
    experiment = first.configure()
    assert ModelRegistry("failure-model").configure() == first.configure() == experiment
    assert lookups == ["churnguard", "churnguard"]  # not found, created, found: once for every registry
    assert mlflow.get_tracking_uri() == first.uri

    first.client.create_registered_model("churn-model")
    run = first.client.create_run(experiment).info.run_id
    first.client.create_model_version("churn-model", f"runs:/{run}/model", run_id=run, tags=FULL.to_mlflow())
    calls = []
    real_get = MlflowClient.get_model_version
    monkeypatch.setattr(MlflowClient, "get_model_version", lambda self, *a: calls.append(a) or real_get(self, *a))
    ready = first.require_ready(1)
    assert ready.tags == VersionTags.from_mlflow(FULL.to_mlflow()) and ready.run_id == run
    assert first.require_ready(1) is ready and first.version_run_id(1) == run
    assert len(calls) == 1  # a version never changes: asked once
    assert ModelRegistry("churn-model").version_run_id(1) == run and len(calls) == 2  # memory is per object
    with pytest.raises(LookupError, match="churn-model has no version 2"):
        first.require_ready(2)
