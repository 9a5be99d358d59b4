"""Score a day's batch with the champion and, as a shadow, the challenger pinned for the day; scores go to
the day's scores partition (customer id, the dataset's segment columns, score and model version per role)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

from churnguard import registry
from churnguard.results import Scored
from churnguard.training import load_version_model

if TYPE_CHECKING:
    from churnguard.context import DayContext

log = logging.getLogger(__name__)
ROLES = (registry.CHAMPION, registry.CHALLENGER)


def score_day(ctx: DayContext) -> Scored:
    """Score the staged batch with the versions pinned for the date (a re-run scores with the same), chunk
    by chunk, streaming the scores partition (a model scores each customer on its own row)."""
    models = {
        role: (version, load_version_model(ctx.registry, version))
        for role in ROLES
        if (version := ctx.versions.role(role)) is not None
    }
    rows = 0

    def scored():
        nonlocal rows
        for chunk in ctx.batch_chunks():
            rows += len(chunk)
            yield score_chunk(chunk, ctx.dataset.id.column, models, ctx.dataset.segments)

    uri = ctx.root.write_scores_chunks(ctx.ds, scored())
    used = {role: version for role, (version, _) in models.items()}
    log.info("scored %d customers of %s with %s", rows, ctx.ds, ", ".join(f"{r} v{v}" for r, v in used.items()))
    return Scored(uri, rows, used.get(registry.CHAMPION), used.get(registry.CHALLENGER))


def score_chunk(batch: pd.DataFrame, id_column: str, models: dict, segments: Sequence[str] = ()) -> pd.DataFrame:
    """The scores of ``batch``: its ids and ``segments`` columns (so measuring a day's labels reads one
    partition), then per role (``{role: (version, model)}``) the score and version."""
    out = batch[[id_column, *segments]].reset_index(drop=True)
    for role, (version, model) in models.items():
        out[f"{role}_score"] = model.predict_proba(batch)
        out[f"{role}_version"] = version
    return out
