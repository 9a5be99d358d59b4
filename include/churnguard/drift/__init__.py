"""Drift of daily batches against a reference profile of the training data.

``fit_profile`` learns the reference once; ``drift_report`` compares a batch (in memory, in chunks, or a
parquet path) with it; ``drift_reports`` compares many small batches stacked in one frame (a simulated
trajectory's days); ``render_html`` draws a report. Statistics: :mod:`churnguard.drift.stats`.
"""

from churnguard.drift.html import render_html
from churnguard.drift.profile import ReferenceProfile, fit_profile
from churnguard.drift.report import DriftReport, drift_report, drift_reports

__all__ = ["DriftReport", "ReferenceProfile", "drift_report", "drift_reports", "fit_profile", "render_html"]
