"""One storage abstraction over the data root: ``file://…`` or ``s3://bucket/prefix``.

The layout under the root is a contract other tools may write to (see docs/data-root.md); its keys are spelled in one
place, :class:`churnguard.dataroot.DataRoot`.
New content is staged under ``_tmp/`` (never listed, never read) before it becomes visible.

What a writer killed at any instant leaves (every step is a named crash point, see :data:`CRASH_POINTS`):

- **File system.** A partition is replaced by one ``renameat2(RENAME_EXCHANGE)`` of its staged folder with
  the live one (a plain ``rename`` when there is none), so readers see the old or the new partition, whole.
  ``move_partition`` is one folder rename: the batch is in exactly one place at every instant.
- **S3** has no rename. New objects are uploaded to ``_tmp/`` and server-side copied onto their final keys
  (one object each, replaced atomically) before stale objects are deleted. A churnguard partition is one
  object of a fixed name, so its replace is one atomic copy; a crash can leave stale objects of a partition
  written by another tool next to the new ones, and the next write of that partition removes them.
  ``move_partition`` copies, then deletes the source: a crash in between leaves the batch in both places,
  identical, and a re-run only deletes the source.

Either way a crash can leave an entry under ``_tmp/``; :meth:`Storage.sweep_tmp` removes those.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import io
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlparse

import pandas as pd

from churnguard.arrow import concat
from churnguard.crashpoints import crash_point
from churnguard.settings import get_settings

log = logging.getLogger(__name__)

TMP_AREA = "_tmp"
PART_FILE = "part-00000.parquet"
CHUNK_ROWS = 250_000  # rows per chunk when a partition is read or written in pieces (about 70 MB of a batch)

# Every point at which the crash-point tests kill a writer (``CHURNGUARD_CRASH_AT``), in write order.
CRASH_POINTS = (
    "storage.replace.staged",  # new files staged under _tmp/, the live partition untouched
    "storage.replace.swapped",  # new partition live; the old copy (file) or the staged objects (S3) in _tmp/
    "storage.write_one.staged",  # file system: one file staged under _tmp/, not yet renamed into place
    "storage.move.target_cleared",  # file system: an existing target moved to _tmp/, the batch not yet moved
    "storage.move.moved",  # file system: the batch moved, the target it replaced still in _tmp/
    "storage.move.copied",  # S3: the batch copied to the target, the source not yet deleted
)


class PartitionNotFound(FileNotFoundError):
    """The requested partition has no parquet files."""


def partition_key(area: str, ds: date | str) -> str:
    """``area/ds=YYYY-MM-DD``."""
    return f"{area}/ds={_iso(ds)}"


def _iso(ds: date | str) -> str:
    return ds.isoformat() if isinstance(ds, date) else date.fromisoformat(str(ds)).isoformat()


def frame_to_parquet_bytes(df: pd.DataFrame) -> bytes:
    """Serialise deterministically: same frame, same bytes (backfills reproduce byte for byte)."""
    buf = io.BytesIO()
    df.to_parquet(buf, index=False, engine="pyarrow", compression="zstd")
    return buf.getvalue()


def write_parquet_chunks(sink: BinaryIO, chunks: Iterable[pd.DataFrame]) -> int:
    """Write ``chunks`` to ``sink`` as one parquet file, a row group per chunk, holding one chunk at a time;
    returns the rows written. Every chunk is cast to the first one's schema; no chunks at all is a ValueError
    (an empty partition is one empty chunk, which keeps its columns)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer, schema, rows = None, None, 0
    try:
        for chunk in chunks:
            table = pa.Table.from_pandas(chunk, schema=schema, preserve_index=False)
            if writer is None:
                schema = table.schema
                writer = pq.ParquetWriter(sink, schema, compression="zstd")
            writer.write_table(table)
            rows += len(chunk)
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise ValueError("no chunks to write: a partition needs at least one (maybe empty) chunk")
    return rows


class Storage:
    """Key/value access to the data root plus partition helpers. Build with :func:`open_storage`."""

    url: str

    # -- primitives every backend implements --------------------------------------------------------
    def uri(self, key: str) -> str:
        raise NotImplementedError

    def read_bytes(self, key: str) -> bytes:
        raise NotImplementedError

    def list_keys(self, prefix: str) -> list[str]:
        """Keys below ``prefix`` (a folder), sorted; the temporary area is never listed."""
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        raise NotImplementedError

    def write_files(self, folder: str, files: dict[str, bytes]) -> None:
        """Replace everything under ``folder`` with ``files`` (name -> bytes): old or new, never a mix."""
        raise NotImplementedError

    def write_streamed(self, folder: str, name: str, produce: Callable[[BinaryIO], None]) -> None:
        """Replace everything under ``folder`` with one file ``name``, whose bytes ``produce`` writes to the
        binary file it is handed, never holding them in memory: staged and swapped exactly as
        :meth:`write_files` (same crash points); an exception in ``produce`` leaves the folder untouched."""
        raise NotImplementedError

    def _local_copy(self, key: str) -> contextlib.AbstractContextManager[Path]:
        """A local file with the object's bytes, for readers that seek (parquet by row groups)."""
        raise NotImplementedError

    def delete_folder(self, folder: str) -> None:
        raise NotImplementedError

    def _write_one(self, folder: str, name: str, data: bytes) -> None:
        raise NotImplementedError

    def _move_folder(self, src: str, dst: str) -> None:
        """Replace folder ``dst`` with folder ``src``, which then no longer exists."""
        raise NotImplementedError

    def _tmp_entries(self) -> dict[str, datetime]:
        """Each entry directly under ``_tmp/`` -> when anything in it was last modified (UTC)."""
        raise NotImplementedError

    def _remove_tmp_entry(self, name: str) -> None:
        raise NotImplementedError

    # -- conveniences built on the primitives -------------------------------------------------------
    def write_bytes(self, key: str, data: bytes) -> str:
        """Atomically write one object (its folder keeps its other files)."""
        folder, _, name = key.rpartition("/")
        self._write_one(folder, name, data)
        return self.uri(key)

    def write_partition(self, area: str, ds: date | str, df: pd.DataFrame) -> str:
        """Replace partition ``area/ds=…`` with ``df`` as one parquet file; returns the partition URI."""
        key = partition_key(area, ds)
        self.write_files(key, {PART_FILE: frame_to_parquet_bytes(df)})
        return self.uri(key)

    def write_partition_chunks(self, area: str, ds: date | str, chunks: Iterable[pd.DataFrame]) -> str:
        """Replace partition ``area/ds=…`` with ``chunks`` as one parquet file, streamed a row group per chunk
        (see :func:`write_parquet_chunks`): the partition is old or new, never half-written."""
        key = partition_key(area, ds)
        self.write_streamed(key, PART_FILE, lambda sink: write_parquet_chunks(sink, chunks))
        return self.uri(key)

    def read_partition_chunks(
        self, area: str, ds: date | str, rows: int = CHUNK_ROWS, columns: list[str] | None = None
    ) -> Iterator[pd.DataFrame]:
        """The partition as frames of at most ``rows`` rows, file after file, in order (``columns``: only
        those); their concatenation equals :meth:`read_partition`."""
        import pyarrow.parquet as pq

        files = self.partition_files(area, ds)
        if not files:
            raise PartitionNotFound(f"{self.uri(partition_key(area, ds))}: no parquet files in partition")
        for key in files:
            with self._local_copy(key) as path:
                for batch in pq.ParquetFile(path).iter_batches(batch_size=rows, columns=columns):
                    yield batch.to_pandas()

    def partition_rows(self, area: str, ds: date | str) -> int:
        """Rows in the partition, from the parquet footers."""
        import pyarrow.parquet as pq

        total = 0
        for key in self.partition_files(area, ds):
            with self._local_copy(key) as path:
                total += pq.ParquetFile(path).metadata.num_rows
        return total

    def partition_files(self, area: str, ds: date | str) -> list[str]:
        key = partition_key(area, ds)
        return [k for k in self.list_keys(key) if k.endswith(".parquet")]

    def partition_exists(self, area: str, ds: date | str) -> bool:
        return bool(self.partition_files(area, ds))

    def read_partition(self, area: str, ds: date | str) -> pd.DataFrame:
        files = self.partition_files(area, ds)
        if not files:
            raise PartitionNotFound(f"{self.uri(partition_key(area, ds))}: no parquet files in partition")
        frames = [pd.read_parquet(io.BytesIO(self.read_bytes(k))) for k in files]
        return concat(frames)

    def list_partitions(self, area: str) -> list[date]:
        days = set()
        for key in self.list_keys(area):
            part = key[len(area) + 1 :].split("/", 1)[0]
            if part.startswith("ds=") and key.endswith(".parquet"):
                try:
                    days.add(date.fromisoformat(part[3:]))
                except ValueError:
                    log.warning("ignoring malformed partition %s", key)
        return sorted(days)

    def move_partition(self, area: str, ds: date | str, to_area: str) -> str:
        """Move a whole partition (e.g. ``landing`` -> ``quarantine``); the target is replaced."""
        src, dst = partition_key(area, ds), partition_key(to_area, ds)
        if not self.list_keys(src):
            raise PartitionNotFound(f"{self.uri(src)}: nothing to move")
        self._move_folder(src, dst)
        return self.uri(dst)

    def sweep_tmp(self, older_than: timedelta = timedelta(hours=1)) -> int:
        """Remove what crashed writers left under ``_tmp/``; returns how many entries were removed.

        An entry is removed once nothing in it changed for ``older_than``, which spares the writes in
        flight; ``timedelta(0)`` removes every entry (only safe while nothing writes).
        """
        cutoff = datetime.now(UTC) - older_than
        swept = [
            name for name, modified in self._tmp_entries().items() if older_than <= timedelta(0) or modified <= cutoff
        ]
        for name in swept:
            self._remove_tmp_entry(name)
        if swept:
            log.info("swept %d staging entries older than %s from %s", len(swept), older_than, self.uri(TMP_AREA))
        return len(swept)


# -- file system -------------------------------------------------------------------------------------
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_EXCHANGE_UNSUPPORTED = (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP)


def _load_renameat2():
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2  # glibc >= 2.28
    except (AttributeError, OSError):
        return None
    fn.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
    fn.restype = ctypes.c_int
    return fn


_renameat2 = _load_renameat2()  # None once this system or file system is known not to support it
_fallback_warned = False


def _exchange(a: Path, b: Path) -> bool:
    """Swap paths ``a`` and ``b`` in one step; False (warned once) where the system cannot."""
    global _renameat2, _fallback_warned
    reason = "renameat2 not in the C library"
    if _renameat2 is not None:
        if _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
            return True
        err = ctypes.get_errno()
        if err not in _EXCHANGE_UNSUPPORTED:
            raise OSError(err, os.strerror(err), str(a), None, str(b))
        _renameat2, reason = None, os.strerror(err)
    if not _fallback_warned:
        _fallback_warned = True
        log.warning(
            "no atomic folder exchange here (%s): replacing partitions file by file, so a crash "
            "can leave a partition with old and new file names until its next write",
            reason,
        )
    return False


def _write_durably(path: Path, data: bytes) -> None:
    """Write and fsync: the rename that publishes ``path`` must never publish an empty file after a power cut."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # some file systems cannot fsync a directory; the rename still holds
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _files_below(folder: Path) -> list[Path]:
    return [Path(dirpath, name) for dirpath, _, names in os.walk(folder) for name in names]


@dataclass
class LocalStorage(Storage):
    """A folder on a local file system.

    ``write_files`` stages the new partition in ``_tmp/<id>/`` (files fsynced), then swaps it with the live
    folder by ``renameat2(RENAME_EXCHANGE)`` and removes the old copy, now in ``_tmp/``: a crash leaves the
    old or the new partition whole, plus at most one ``_tmp/`` entry. Where the exchange is refused (not
    Linux, or a file system answering ENOSYS/EINVAL) files are renamed into the live folder one by one,
    then stale ones deleted: each file is still old or new, and a churnguard partition (one file of a fixed
    name) still old or new, but a partition whose file names change can show both sets until its next write.
    """

    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.url = f"file://{self.root}"

    def _path(self, key: str) -> Path:
        return self.root / key

    def uri(self, key: str) -> str:
        return f"file://{self._path(key)}"

    def read_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def list_keys(self, prefix: str) -> list[str]:
        base = self._path(prefix)
        if not base.is_dir():
            return []
        keys = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not d.startswith((".", TMP_AREA))]
            for name in filenames:
                if not name.startswith("."):
                    keys.append(Path(dirpath, name).relative_to(self.root).as_posix())
        return sorted(keys)

    def _tmp_path(self, kind: str = "") -> Path:
        """A fresh, not yet existing path under ``_tmp/``."""
        area = self.root / TMP_AREA
        area.mkdir(parents=True, exist_ok=True)
        return area / f"{kind}{uuid.uuid4().hex}"

    @contextlib.contextmanager
    def _local_copy(self, key: str) -> Iterator[Path]:
        yield self._path(key)

    def write_files(self, folder: str, files: dict[str, bytes]) -> None:
        def stage(staged: Path) -> None:
            for name, data in files.items():
                _write_durably(staged / name, data)

        self._replace_folder(folder, set(files), stage)

    def write_streamed(self, folder: str, name: str, produce: Callable[[BinaryIO], None]) -> None:
        def stage(staged: Path) -> None:
            with open(staged / name, "wb") as fh:
                produce(fh)
                fh.flush()
                os.fsync(fh.fileno())

        self._replace_folder(folder, {name}, stage)

    def _replace_folder(self, folder: str, names: set[str], stage: Callable[[Path], None]) -> None:
        """Stage the new content (``stage`` fills a fresh folder under ``_tmp/``), then swap it in."""
        target, staged = self._path(folder), self._tmp_path()
        try:
            staged.mkdir()
            stage(staged)
            crash_point("storage.replace.staged")
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                os.rename(staged, target)  # nothing to exchange with: one atomic rename
            elif not _exchange(staged, target):
                self._replace_file_by_file(staged, target, names)  # has its own crash points
                return
            _fsync_dir(target.parent)
            crash_point("storage.replace.swapped")
        finally:
            shutil.rmtree(staged, ignore_errors=True)  # the old copy after a swap, or a failed staging

    def _replace_file_by_file(self, staged: Path, target: Path, names: set[str]) -> None:
        """The fallback without an exchange: each file atomically, new ones first, then the stale ones go."""
        for name in names:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged / name, target / name)
        _fsync_dir(target)
        crash_point("storage.replace.swapped")
        for path in _files_below(target):
            if path.relative_to(target).as_posix() not in names:
                path.unlink(missing_ok=True)

    def _write_one(self, folder: str, name: str, data: bytes) -> None:
        target, staged = self._path(folder) / name, self._tmp_path()
        try:
            _write_durably(staged / name, data)
            crash_point("storage.write_one.staged")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged / name, target)  # atomic: readers see the old file or the new one
            _fsync_dir(target.parent)
        finally:
            shutil.rmtree(staged, ignore_errors=True)

    def _move_folder(self, src: str, dst: str) -> None:
        source, target = self._path(src), self._path(dst)
        target.parent.mkdir(parents=True, exist_ok=True)
        replaced = None
        if target.exists() and source.exists():
            # Out of the way first: exchanging would put the old target where the batch was.
            replaced = self._tmp_path("old-")
            os.rename(target, replaced)
            crash_point("storage.move.target_cleared")
        try:
            os.rename(source, target)
        except FileNotFoundError:  # another process moved it first: what we cleared is its batch, put it back
            if replaced is not None:
                os.rename(replaced, target)
            raise PartitionNotFound(f"{self.uri(src)}: nothing to move (moved by another process)") from None
        _fsync_dir(target.parent)
        _fsync_dir(source.parent)
        crash_point("storage.move.moved")
        if replaced is not None:
            shutil.rmtree(replaced, ignore_errors=True)

    def delete_folder(self, folder: str) -> None:
        path = self._path(folder)
        if path.exists():
            gone = self._tmp_path("deleted-")
            os.rename(path, gone)  # the folder disappears whole, then is removed at leisure
            shutil.rmtree(gone, ignore_errors=True)

    def _tmp_entries(self) -> dict[str, datetime]:
        area = self.root / TMP_AREA
        entries = {}
        for entry in area.iterdir() if area.is_dir() else ():
            try:
                newest = max(p.lstat().st_mtime for p in [entry, *_files_below(entry)])
            except FileNotFoundError:  # finished by its writer meanwhile
                continue
            entries[entry.name] = datetime.fromtimestamp(newest, UTC)
        return entries

    def _remove_tmp_entry(self, name: str) -> None:
        entry = self.root / TMP_AREA / name
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


# -- S3 ----------------------------------------------------------------------------------------------
class S3Storage(Storage):
    """S3 API through boto3, against AWS or any compatible endpoint (moto server, SeaweedFS, MinIO).

    S3 has no rename, so ``write_files`` holds its guarantee by design: the new objects are uploaded to
    ``_tmp/<id>/`` first, server-side copied onto their final keys (each ``CopyObject`` replaces one whole
    object), and only then are stale objects and the staged copies deleted. A partition written by churnguard
    is one object of a fixed name, so a crash leaves it old or new; a partition written with other file
    names can show the new objects next to stale ones, and staged objects can remain under ``_tmp/``. The
    next write of that partition completes it; :meth:`sweep_tmp` removes the staged objects.
    """

    def __init__(self, bucket: str, prefix: str, endpoint_url: str | None = None, **credentials: str | None) -> None:
        """``credentials``: boto3's ``aws_access_key_id``, ``aws_secret_access_key``, ``region_name`` (None: its
        own chain, e.g. ``AWS_*`` variables)."""
        import boto3  # imported lazily: file:// users never pay for it

        self.bucket = bucket
        self.prefix = prefix
        self.url = f"s3://{bucket}/{prefix}".rstrip("/")
        self.client = boto3.client("s3", endpoint_url=endpoint_url, **credentials)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def read_bytes(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            raise FileNotFoundError(self.uri(key)) from None

    def exists(self, key: str) -> bool:
        return bool(
            self.client.list_objects_v2(Bucket=self.bucket, Prefix=self._key(key), MaxKeys=1).get("KeyCount", 0)
        )

    def _objects(self, folder: str) -> dict[str, dict]:
        """Every object below ``folder`` (hidden and staged ones too): key relative to the root -> listing."""
        full = self._key(folder).rstrip("/") + "/"
        strip = len(self.prefix) + 1 if self.prefix else 0
        return {
            obj["Key"][strip:]: obj
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full)
            for obj in page.get("Contents", [])
        }

    def list_keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self._objects(prefix) if not k.startswith(TMP_AREA + "/") and "/." not in k)

    def _copy(self, src: str, dst: str) -> None:
        self.client.copy_object(
            Bucket=self.bucket, Key=self._key(dst), CopySource={"Bucket": self.bucket, "Key": self._key(src)}
        )

    def _delete(self, keys: list[str]) -> None:
        """Delete ``keys`` in as few requests as S3 allows (1,000 keys each)."""
        for start in range(0, len(keys), 1000):
            chunk = [{"Key": self._key(k)} for k in keys[start : start + 1000]]
            errors = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": chunk, "Quiet": True}).get(
                "Errors", []
            )
            if errors:
                raise OSError(f"{self.url}: could not delete {len(errors)} object(s), e.g. {errors[0]}")

    @contextlib.contextmanager
    def _local_copy(self, key: str) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="churnguard-") as tmp:
            path = Path(tmp) / key.rpartition("/")[2]
            try:
                self.client.download_file(self.bucket, self._key(key), str(path))
            except self.client.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                    raise FileNotFoundError(self.uri(key)) from None
                raise
            yield path

    def write_files(self, folder: str, files: dict[str, bytes]) -> None:
        def upload(key: str, name: str) -> None:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=files[name])

        self._replace_objects(folder, list(files), upload)

    def write_streamed(self, folder: str, name: str, produce: Callable[[BinaryIO], None]) -> None:
        with tempfile.TemporaryFile(prefix="churnguard-") as fh:  # staged locally, then uploaded
            produce(fh)
            fh.flush()

            def upload(key: str, _: str) -> None:
                fh.seek(0)
                self.client.upload_fileobj(fh, self.bucket, self._key(key))

            self._replace_objects(folder, [name], upload)

    def _replace_objects(self, folder: str, names: list[str], upload: Callable[[str, str], None]) -> None:
        """Upload each of ``names`` to ``_tmp/`` (``upload(key, name)``), copy them onto the folder, then
        delete the folder's stale objects and the staged copies."""
        stale = [k for k in self.list_keys(folder) if k[len(folder) + 1 :] not in names]
        staging = f"{TMP_AREA}/{uuid.uuid4().hex}"
        try:
            for name in names:
                upload(f"{staging}/{name}", name)
            crash_point("storage.replace.staged")
            for name in names:  # new objects in before any stale one goes: never an empty partition
                self._copy(f"{staging}/{name}", f"{folder}/{name}")
            crash_point("storage.replace.swapped")
            self._delete(stale)
        finally:
            self._delete([f"{staging}/{name}" for name in names])

    def _write_one(self, folder: str, name: str, data: bytes) -> None:
        # One PUT is atomic on S3: the object appears whole once the upload completes, or not at all.
        self.client.put_object(Bucket=self.bucket, Key=self._key(f"{folder}/{name}" if folder else name), Body=data)

    def _move_folder(self, src: str, dst: str) -> None:
        source = {k[len(src) + 1 :]: obj["ETag"] for k, obj in self._objects(src).items()}
        target = {k[len(dst) + 1 :]: obj["ETag"] for k, obj in self._objects(dst).items()}
        if target != source:  # equal after a crash between copy and delete: only the delete is left to do
            try:
                for name in source:
                    self._copy(f"{src}/{name}", f"{dst}/{name}")
            except self.client.exceptions.NoSuchKey:  # another process moved it first (it copies, then deletes)
                raise PartitionNotFound(f"{self.uri(src)}: nothing to move (moved by another process)") from None
        crash_point("storage.move.copied")
        self._delete([f"{dst}/{name}" for name in target if name not in source] + [f"{src}/{name}" for name in source])

    def delete_folder(self, folder: str) -> None:
        self._delete(list(self._objects(folder)))

    def _tmp_entries(self) -> dict[str, datetime]:
        entries: dict[str, datetime] = {}
        for key, obj in self._objects(TMP_AREA).items():
            name = key[len(TMP_AREA) + 1 :].split("/", 1)[0]
            entries[name] = max(entries.get(name, obj["LastModified"]), obj["LastModified"])
        return entries

    def _remove_tmp_entry(self, name: str) -> None:
        self._delete(list(self._objects(f"{TMP_AREA}/{name}")))


def open_storage(url: str | None = None, endpoint_url: str | None = None) -> Storage:
    """The storage at ``url`` (default: the configured data root, ``CHURNGUARD_DATA_URL``)."""
    settings = get_settings()
    url = url or settings.data_url
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return LocalStorage(Path(unquote(parsed.path)))
    if parsed.scheme == "s3":
        return S3Storage(
            parsed.netloc,
            parsed.path.strip("/"),
            endpoint_url or settings.s3_endpoint_url,
            aws_access_key_id=settings.s3_access_key_id,
            aws_secret_access_key=settings.s3_secret_access_key,
            region_name=settings.s3_region,
        )
    raise ValueError(f"data URL '{url}': scheme must be file:// or s3://")


def open_s3_url(url: str) -> tuple[Storage, str]:
    """The storage of the bucket of ``url`` (``s3://bucket/key``, at the configured endpoint) and ``key``: where
    an object or folder named by its full URL is read from."""
    parsed = urlparse(url)
    if parsed.scheme != "s3":
        raise ValueError(f"'{url}': not an s3:// URL")
    return open_storage(f"s3://{parsed.netloc}"), parsed.path.strip("/")
