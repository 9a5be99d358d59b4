"""Reading batches: every parquet file of a partition (or a path, ``file://`` or ``s3://`` URL) as one table,
classified. The one reader of landed data: ingest, label deliveries and the CLIs use it.

A partition that is not a readable table raises :class:`~churnguard.arrow.UnreadableBatch` with one line naming
the file and why (missing, empty, not parquet and what it looks like, truncated, corrupt, a schema that
changes between the files of a streamed batch), never a traceback.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

import pandas as pd

from churnguard.arrow import UnreadableBatch, concat, parquet_chunks, parse_parquet
from churnguard.storage import CHUNK_ROWS, Storage, open_s3_url

__all__ = [
    "UnreadableBatch",
    "batch_chunks",
    "file_chunks",
    "read_batch",
    "read_stored",
    "read_stored_chunks",
    "stored_rows",
]
FILE_CHUNK_ROWS = 1 << 18


def read_batch(source: str | Path) -> pd.DataFrame:
    """The table at ``source``: one parquet file, or every ``*.parquet`` in a partition folder."""
    text = str(source)
    parsed = urlparse(text)
    if parsed.scheme == "s3":
        return _read_s3(*open_s3_url(text))
    path = Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(text)
    if path.is_dir():
        files = sorted(p for p in path.glob("*.parquet") if not p.name.startswith("."))
        if not files:
            raise UnreadableBatch("no parquet files in this folder")
        return concat([parse_parquet(_read_file(p), p.name) for p in files])
    return parse_parquet(_read_file(path), None)


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UnreadableBatch("no such file") from None
    except OSError as exc:
        raise UnreadableBatch(f"cannot read file: {exc.strerror or exc}") from None


def read_stored(storage: Storage, folder: str) -> pd.DataFrame:
    """Every ``*.parquet`` below ``folder`` of ``storage`` (a partition key of
    :class:`~churnguard.dataroot.DataRoot`) as one table, classified as :func:`read_batch` does."""
    try:
        files = [k for k in storage.list_keys(folder) if k.endswith(".parquet")]
        if not files:
            raise UnreadableBatch("no parquet files under this prefix")
        return concat([parse_parquet(storage.read_bytes(k), k.rsplit("/", 1)[-1]) for k in files])
    except FileNotFoundError:
        raise UnreadableBatch("no such object") from None


def stored_rows(storage: Storage, folder: str) -> int | None:
    """Rows of every ``*.parquet`` below ``folder``, from the footers; None when a file has no readable
    footer (:func:`read_stored` then says why)."""
    import pyarrow.parquet as pq

    total = 0
    for key in storage.list_keys(folder):
        if key.endswith(".parquet"):
            try:
                total += pq.ParquetFile(io.BytesIO(storage.read_bytes(key))).metadata.num_rows
            except Exception:  # classified by read_stored, with its message
                return None
    return total


def read_stored_chunks(storage: Storage, folder: str, rows: int) -> Iterator[pd.DataFrame]:
    """:func:`read_stored` as frames of at most ``rows`` rows, one file in memory at a time (its bytes), and
    classified as it reads: :class:`UnreadableBatch` when a file is not a table, or when a file's columns or
    types differ from the first file's (a streamed batch has one schema; :func:`read_stored` concatenates)."""
    files = [k for k in storage.list_keys(folder) if k.endswith(".parquet")]
    if not files:
        raise UnreadableBatch("no parquet files under this prefix")
    first: tuple[str, pd.Series] | None = None
    for key in files:
        part = key.rsplit("/", 1)[-1]
        try:
            data = storage.read_bytes(key)
        except FileNotFoundError:
            raise UnreadableBatch("no such object") from None
        for chunk in parquet_chunks(data, part, rows):
            if first is None:
                first = (part, chunk.dtypes)
            elif not chunk.dtypes.equals(first[1]):
                raise UnreadableBatch(
                    f"{part}: columns or types differ from {first[0]}'s (a batch this "
                    f"large is streamed, one schema for every file)"
                )
            yield chunk


def _read_s3(storage: Storage, key: str) -> pd.DataFrame:
    if not key.endswith(".parquet"):
        return read_stored(storage, key)
    try:
        return parse_parquet(storage.read_bytes(key), None)
    except FileNotFoundError:
        raise UnreadableBatch("no such object") from None


def batch_chunks(source: str | Path, rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """:func:`read_batch` of ``source``, read when the first chunk is asked for and handed out ``rows`` rows at
    a time: what ``validate_batch`` takes, so a batch that cannot be read is reported as ``unreadable``."""
    frame = read_batch(source)
    for start in range(0, max(len(frame), 1), rows):
        yield frame.iloc[start : start + rows]


def file_chunks(
    path: str | Path, columns: list[str] | None = None, rows: int = FILE_CHUNK_ROWS
) -> Iterator[pd.DataFrame]:
    """One local parquet file streamed by row groups, ``rows`` rows at a time and never read whole: only those of
    ``columns`` the file has (all columns when None). What ``churnguard drift`` hands ``drift_report``; pyarrow's
    errors pass through (``OSError``, ``ValueError``)."""
    import pyarrow.parquet as pq

    source = pq.ParquetFile(path)
    present = None if columns is None else [c for c in columns if c in source.schema_arrow.names]
    for record_batch in source.iter_batches(batch_size=rows, columns=present):
        yield record_batch.to_pandas()
