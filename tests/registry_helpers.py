"""The edge tests stand at: the registry of the churn model (or the failure model) and bootstrap with its
collaborators opened here, on the test's own settings."""

from __future__ import annotations

from churnguard.registry import FailureVersionTags, ModelRegistry

MODEL = "churn-model"


def churn_registry() -> ModelRegistry:
    """The churn model's registry on the current settings (built anew: every test has its own store)."""
    return ModelRegistry(MODEL)


def failure_registry() -> ModelRegistry:
    return ModelRegistry("failure-model", tag_type=FailureVersionTags)


def bootstrap(dataset: str | None = "telco", seed: int = 0, replace_champion: bool = False) -> dict:
    """:func:`churnguard.bootstrap.bootstrap` with what the CLI would hand it."""
    from churnguard.bootstrap import bootstrap as run_bootstrap
    from churnguard.context import open_bootstrap

    return run_bootstrap(open_bootstrap(dataset), seed, replace_champion)
