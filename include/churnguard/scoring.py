"""Score a day's batch with the champion and, as a shadow, the challenger pinned for the day; scores go to
the day's scores partition (customer id, score and model version per role)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pandas as pd

from churnguard import registry

if TYPE_CHECKING:
    from churnguard.context import DayContext

log = logging.getLogger(__name__)
ROLES = (registry.CHAMPION, registry.CHALLENGER)


def score_day(ctx: DayContext) -> dict:
    """Score the staged batch with the versions pinned for the date (a re-run scores with the same)."""
    batch, name = ctx.batch(), ctx.model_name
    out = pd.DataFrame({ctx.dataset.id.column: batch[ctx.dataset.id.column]})
    used = {}
    for role in ROLES:
        version = ctx.versions.role(role)
        if version is None:
            continue
        out[f"{role}_score"] = registry.load_version_model(name, version).predict_proba(batch)
        out[f"{role}_version"] = version
        used[role] = version
    uri = ctx.root.write_scores(ctx.ds, out)
    log.info("scored %d customers of %s with %s", len(out), ctx.ds,
             ", ".join(f"{r} v{v}" for r, v in used.items()))
    return {"scores_uri": uri, "rows": len(out), "champion_version": used.get(registry.CHAMPION),
            "challenger_version": used.get(registry.CHALLENGER)}
