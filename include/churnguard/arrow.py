"""Parquet and Arrow helpers every layer shares: bytes to a table, classified, and Arrow's memory handed back.

:func:`parse_parquet` turns a file's bytes into a frame or raises :class:`UnreadableBatch` with one line saying
why not (empty, not parquet and what it looks like instead, truncated, corrupt); :func:`parquet_chunks` does
the same a row group's worth at a time. The batch readers (:mod:`churnguard.batches`) and validation share it.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import pandas as pd


class UnreadableBatch(Exception):
    """The input is not a readable parquet table (missing, empty, truncated, not parquet)."""


def parse_parquet(data: bytes, part: str | None) -> pd.DataFrame:
    """The table in ``data`` (the file ``part``, named in the message when given)."""
    where = f"{part}: " if part else ""
    check_parquet_bytes(data, where)
    try:
        return pd.read_parquet(io.BytesIO(data))
    except Exception as exc:  # pyarrow raises several types for corrupt files; all mean "unreadable"
        raise UnreadableBatch(f"{where}corrupt parquet file ({one_line(exc)})") from None


def parquet_chunks(data: bytes, part: str, rows: int) -> Iterator[pd.DataFrame]:
    """The table in ``data`` as frames of at most ``rows`` rows, classified as :func:`parse_parquet` does."""
    import pyarrow.parquet as pq

    check_parquet_bytes(data, f"{part}: ")
    try:
        for batch in pq.ParquetFile(io.BytesIO(data)).iter_batches(batch_size=rows):
            yield batch.to_pandas()
    except Exception as exc:  # pyarrow raises several types for corrupt files; all mean "unreadable"
        raise UnreadableBatch(f"{part}: corrupt parquet file ({one_line(exc)})") from None


def check_parquet_bytes(data: bytes, where: str) -> None:
    if not data:
        raise UnreadableBatch(f"{where}empty file (0 bytes)")
    if not data.startswith(b"PAR1"):
        raise UnreadableBatch(f"{where}not a parquet file (no PAR1 magic bytes{_looks_like(data)})")
    if len(data) < 12 or not data.endswith(b"PAR1"):
        raise UnreadableBatch(f"{where}truncated parquet file ({len(data)} bytes, no footer)")


def _looks_like(data: bytes) -> str:
    head = data[:2048]
    try:
        text = head.decode()
    except UnicodeDecodeError:
        return ""
    first = text.splitlines()[0] if text.strip() else ""
    if "," in first or "\t" in first or ";" in first:
        return f"; it looks like CSV text starting '{first[:60]}'"
    return "; it looks like text"


def concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def one_line(exc: BaseException) -> str:
    """An exception as one line of at most 200 characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def release_arrow_memory() -> None:
    """Hand back to the system what Arrow's memory pool keeps of freed buffers (mimalloc keeps them for reuse:
    after a day's 10M labels were read and dropped, nearly 1 GB stayed resident)."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
