"""Speed and memory of ``drift_report`` on the Telco table resampled to 10k, 100k and 1M rows.

Measured in one run on the same data (19 features + a model-score column, with a shift in a few
columns): churnguard's full report, a plain numpy one-pass PSI baseline, and, with
``--with-evidently``, Evidently 0.7's ``DataDriftPreset`` in its own venv (``benchmarks/.venv-evidently``,
created on first use; Evidently needs pandas < 3 and is not a project dependency). Then a 10M-row batch
generated and reported chunk by chunk, never whole. Targets at 1M × 20: churnguard ≤ 1.5× the numpy
baseline, ≥ 20× faster than Evidently, peak memory ≤ 3× the batch's in-memory size.
Not a test: numbers to read.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

from churnguard.config import load_dataset_config, load_drift_config
from churnguard.data import load_reference
from churnguard.drift import drift_report, fit_profile

HERE = Path(__file__).resolve().parent
EVIDENTLY_VENV = HERE / ".venv-evidently"
SIZES = (10_000, 100_000, 1_000_000)
REPEATS = 3

EVIDENTLY_SCRIPT = """
import json, sys, time
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset
ref_path, cur_path, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
ref, cur = pd.read_parquet(ref_path), pd.read_parquet(cur_path)
definition = DataDefinition(numerical_columns=spec["numerical"], categorical_columns=spec["categorical"])
start = time.perf_counter()
Report([DataDriftPreset()]).run(Dataset.from_pandas(cur, data_definition=definition),
                                 Dataset.from_pandas(ref, data_definition=definition))
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def with_score(df: pd.DataFrame, numeric: list[str]) -> pd.DataFrame:
    """Add a deterministic stand-in for the model's churn score (a logistic of a few columns)."""
    z = -1.5 - 0.04 * df["tenure"] + 0.02 * df["monthly_charges"] + 1.2 * (df["contract"] == "Month-to-month")
    return df.assign(score=1 / (1 + np.exp(-z.to_numpy(dtype=float))))


def resample(ref: pd.DataFrame, n: int, seed: int, shift: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    batch = ref.iloc[rng.integers(0, len(ref), n)].reset_index(drop=True)
    if shift:
        batch["monthly_charges"] = batch["monthly_charges"] + 10.0
        batch["tenure"] = batch["tenure"] * 0.8
        flip = rng.random(n) < 0.05
        batch["payment_method"] = batch["payment_method"].where(~flip, "Digital wallet")
    return batch


def numpy_baseline(profile: dict, batch: pd.DataFrame, epsilon: float) -> dict[str, float]:
    """One pass, PSI only: searchsorted + bincount for numbers, factorize + bincount for categories."""
    out = {}
    for col, ref in [*profile["numeric"].items(), ("score", profile["prediction"])]:
        edges = np.asarray(ref["edges"])
        x = batch[col].to_numpy(dtype=float)
        counts = np.bincount(np.searchsorted(edges, x[~np.isnan(x)], side="right"), minlength=len(edges) + 1)
        out[col] = _psi(np.asarray(ref["bin_counts"], float), counts.astype(float), epsilon)
    for col, ref in profile["categorical"].items():
        codes, uniques = pd.factorize(batch[col])
        position = {k: i for i, k in enumerate(ref["categories"])}
        remap = np.array([position.get(str(u), len(position)) for u in uniques] + [len(position)])
        counts = np.bincount(remap[codes], minlength=len(position) + 1)
        ref_counts = np.array([*ref["categories"].values(), 0], dtype=float)
        out[col] = _psi(ref_counts, counts.astype(float), epsilon)
    return out


def _psi(r: np.ndarray, c: np.ndarray, epsilon: float) -> float:
    r, c = np.maximum(r / r.sum(), epsilon), np.maximum(c / c.sum(), epsilon)
    return float(np.sum((c - r) * np.log(c / r)))


def best_of(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def peak_memory(fn) -> int:
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def evidently_python(create: bool) -> Path | None:
    python = EVIDENTLY_VENV / "bin" / "python"
    if python.exists() or not create:
        return python if python.exists() else None
    print(f"creating {EVIDENTLY_VENV} (python3.11 -m venv + pip install 'evidently==0.7.*' 'pandas<3')")
    subprocess.run(["python3.11", "-m", "venv", str(EVIDENTLY_VENV)], check=True)
    result = subprocess.run(
        [str(EVIDENTLY_VENV / "bin" / "pip"), "install", "-q", "evidently==0.7.*", "pandas<3", "pyarrow"],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        print(f"evidently install failed:\n{result.stderr[-2000:]}")
        return None
    return python


def run_evidently(python: Path, ref: pd.DataFrame, batch: pd.DataFrame, spec: dict, tmp: Path) -> float | str:
    ref_path, cur_path = tmp / "ref.parquet", tmp / "cur.parquet"
    ref.to_parquet(ref_path)
    batch.to_parquet(cur_path)
    result = subprocess.run(
        [str(python), "-c", EVIDENTLY_SCRIPT, str(ref_path), str(cur_path), json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if result.returncode != 0:
        last = result.stderr.strip().splitlines()[-1:] or [f"exit code {result.returncode}"]
        return f"failed: {last[0]}"
    return json.loads(result.stdout.strip().splitlines()[-1])["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--with-evidently", action="store_true", help="create/use benchmarks/.venv-evidently")
    parser.add_argument("--chunked-rows", type=int, default=10_000_000)
    args = parser.parse_args()

    cfg, drift_cfg = load_dataset_config(), load_drift_config()
    ref = with_score(load_reference(cfg), cfg.numeric)
    start = time.perf_counter()
    profile = fit_profile(ref, cfg, drift_cfg, scores=ref["score"])
    print(
        f"reference: {len(ref)} rows, profile fitted in {time.perf_counter() - start:.3f}s, "
        f"{len(profile.to_json()) / 1e3:.0f} kB JSON"
    )
    columns = [*cfg.features, "score"]
    spec = {"numerical": [*cfg.numeric, *cfg.binary, "score"], "categorical": cfg.categorical}
    python = evidently_python(args.with_evidently)
    if args.with_evidently and python is None:
        print("evidently: not available (see the install error above)")

    print(
        f"\n{'rows':>9} {'cols':>4} {'churnguard s':>12} {'numpy s':>8} {'cg/numpy':>8} "
        f"{'evidently s':>11} {'evid/cg':>8} {'batch MB':>8} {'peak MB':>8} {'peak/batch':>10}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for n in SIZES:
            batch = with_score(resample(ref, n, seed=n), cfg.numeric)[columns]
            report = drift_report(profile, batch, drift_cfg, scores="score")  # warm-up, and a sanity check
            cg = best_of(lambda b=batch: drift_report(profile, b, drift_cfg, scores="score"))
            base = best_of(lambda b=batch: numpy_baseline(profile.data, b, drift_cfg.psi.epsilon))
            size = batch.memory_usage(deep=True).sum()
            peak = peak_memory(lambda b=batch: drift_report(profile, b, drift_cfg, scores="score"))
            evid: float | str = "-"
            if python is not None:
                evid = run_evidently(python, ref[columns], batch, spec, Path(tmp))
            evid_cols = f"{evid:>11.2f} {evid / cg:>7.0f}x" if isinstance(evid, float) else f"{evid:>11} {'-':>8}"
            print(
                f"{n:>9} {len(columns):>4} {cg:>12.3f} {base:>8.3f} {cg / base:>7.2f}x {evid_cols} "
                f"{size / 1e6:>8.1f} {peak / 1e6:>8.1f} {peak / size:>9.2f}x   "
                f"(severity {report.severity}, drifted {', '.join(report.drifted_features())})"
            )
            if isinstance(evid, str) and evid != "-":
                print(f"   evidently {evid}")

    chunk_rows = 500_000
    n_chunks = args.chunked_rows // chunk_rows

    def chunks():
        for i in range(n_chunks):
            yield with_score(resample(ref, chunk_rows, seed=10_000 + i), cfg.numeric)[columns]

    one_chunk = with_score(resample(ref, chunk_rows, seed=1), cfg.numeric)[columns].memory_usage(deep=True).sum()
    tracemalloc.start()
    start = time.perf_counter()
    report = drift_report(profile, chunks(), drift_cfg, scores="score")
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    whole = one_chunk * n_chunks
    bounds = [f["wasserstein"]["normalised_bound"] for f in report.features.values() if f["kind"] == "numeric"]
    print(
        f"\nchunked: {report.n_rows} rows in {n_chunks} chunks of {chunk_rows}, generated on the fly: "
        f"{seconds:.2f}s including generation (tracemalloc on), peak {peak / 1e6:.0f} MB "
        f"= {peak / one_chunk:.2f}x one chunk ({one_chunk / 1e6:.0f} MB), "
        f"{peak / whole:.3f}x the whole batch "
        f"({whole / 1e6:.0f} MB if held); severity {report.severity}; max normalised Wasserstein bound "
        f"{max(b for b in bounds if b is not None):.2e}"
    )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import clean_stop

    with clean_stop.on_signals():  # SIGTERM (timeout) or Ctrl-C: the Evidently run ends
        sys.exit(main())
