"""One storage abstraction over the data root: ``file://…`` or ``s3://bucket/prefix``.

The layout under the root is a contract other tools may write to (see README):
``landing/ds=YYYY-MM-DD/*.parquet``, ``labels/ds=…``, ``reference/``, ``reports/ds=…``, ``quarantine/ds=…``.

Writes are atomic: a partition is written under a temporary key first and then moved into place (a
directory rename on a file system, a server-side copy on S3), so a crashed writer never leaves half a
partition, and readers ignore the ``_tmp/`` area.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import unquote, urlparse

import pandas as pd

from churnguard.settings import get_settings

log = logging.getLogger(__name__)

TMP_AREA = "_tmp"
PART_FILE = "part-00000.parquet"


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
        """Atomically replace everything under ``folder`` with ``files`` (name -> bytes)."""
        raise NotImplementedError

    def delete_folder(self, folder: str) -> None:
        raise NotImplementedError

    # -- conveniences built on the primitives -------------------------------------------------------
    def write_bytes(self, key: str, data: bytes) -> str:
        """Atomically write one object (its folder keeps its other files)."""
        folder, _, name = key.rpartition("/")
        self._write_one(folder, name, data)
        return self.uri(key)

    def _write_one(self, folder: str, name: str, data: bytes) -> None:
        raise NotImplementedError

    def write_partition(self, area: str, ds: date | str, df: pd.DataFrame) -> str:
        """Replace partition ``area/ds=…`` with ``df`` as one parquet file; returns the partition URI."""
        key = partition_key(area, ds)
        self.write_files(key, {PART_FILE: frame_to_parquet_bytes(df)})
        return self.uri(key)

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
        return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)

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
        src = partition_key(area, ds)
        files = {k[len(src) + 1 :]: self.read_bytes(k) for k in self.list_keys(src)}
        if not files:
            raise PartitionNotFound(f"{self.uri(src)}: nothing to move")
        dst = partition_key(to_area, ds)
        self.write_files(dst, files)
        self.delete_folder(src)
        return self.uri(dst)


@dataclass
class LocalStorage(Storage):
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

    def _staging(self) -> Path:
        tmp = self.root / TMP_AREA / uuid.uuid4().hex
        tmp.mkdir(parents=True)
        return tmp

    def write_files(self, folder: str, files: dict[str, bytes]) -> None:
        target = self._path(folder)
        tmp = self._staging()
        try:
            for name, data in files.items():
                (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                (tmp / name).write_bytes(data)
            target.parent.mkdir(parents=True, exist_ok=True)
            old = None
            if target.exists():
                old = self.root / TMP_AREA / f"old-{uuid.uuid4().hex}"
                os.rename(target, old)
            os.rename(tmp, target)  # atomic on one file system
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def _write_one(self, folder: str, name: str, data: bytes) -> None:
        target = self._path(folder) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._staging() / name
        tmp.write_bytes(data)
        os.replace(tmp, target)
        shutil.rmtree(tmp.parent, ignore_errors=True)

    def delete_folder(self, folder: str) -> None:
        shutil.rmtree(self._path(folder), ignore_errors=True)


class S3Storage(Storage):
    """S3 API through boto3, against AWS or any compatible endpoint (moto server, SeaweedFS, MinIO)."""

    def __init__(self, bucket: str, prefix: str, endpoint_url: str | None = None) -> None:
        import boto3  # imported lazily: file:// users never pay for it

        self.bucket = bucket
        self.prefix = prefix
        self.url = f"s3://{bucket}/{prefix}".rstrip("/")
        self.client = boto3.client("s3", endpoint_url=endpoint_url)

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
        return bool(self.client.list_objects_v2(Bucket=self.bucket, Prefix=self._key(key), MaxKeys=1).get(
            "KeyCount", 0))

    def list_keys(self, prefix: str) -> list[str]:
        full = self._key(prefix).rstrip("/") + "/"
        strip = len(self.prefix) + 1 if self.prefix else 0
        keys = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
            for obj in page.get("Contents", []):
                key = obj["Key"][strip:]
                if not key.startswith(TMP_AREA + "/") and "/." not in key:
                    keys.append(key)
        return sorted(keys)

    def _stage_and_copy(self, folder: str, files: dict[str, bytes]) -> None:
        staging = f"{TMP_AREA}/{uuid.uuid4().hex}"
        try:
            for name, data in files.items():
                self.client.put_object(Bucket=self.bucket, Key=self._key(f"{staging}/{name}"), Body=data)
            # CopyObject makes each object appear whole; the temporary keys are never listed.
            for name in files:
                self.client.copy_object(
                    Bucket=self.bucket,
                    Key=self._key(f"{folder}/{name}"),
                    CopySource={"Bucket": self.bucket, "Key": self._key(f"{staging}/{name}")},
                )
        finally:
            for name in files:
                self.client.delete_object(Bucket=self.bucket, Key=self._key(f"{staging}/{name}"))

    def write_files(self, folder: str, files: dict[str, bytes]) -> None:
        stale = [k for k in self.list_keys(folder) if k[len(folder) + 1 :] not in files]
        self._stage_and_copy(folder, files)
        for key in stale:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def _write_one(self, folder: str, name: str, data: bytes) -> None:
        self._stage_and_copy(folder, {name: data})

    def delete_folder(self, folder: str) -> None:
        for key in self.list_keys(folder):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))


def open_storage(url: str | None = None, endpoint_url: str | None = None) -> Storage:
    """The storage at ``url`` (default: the configured data root, ``CHURNGUARD_DATA_URL``)."""
    settings = get_settings()
    url = url or settings.data_url
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return LocalStorage(Path(unquote(parsed.path)))
    if parsed.scheme == "s3":
        return S3Storage(parsed.netloc, parsed.path.strip("/"), endpoint_url or settings.s3_endpoint_url)
    raise ValueError(f"data URL '{url}': scheme must be file:// or s3://")
