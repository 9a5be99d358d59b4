"""One storage abstraction over file:// and s3:// (a real moto server over HTTP): atomic partitions."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from churnguard import storage as storage_module
from churnguard.storage import CRASH_POINTS, LocalStorage, PartitionNotFound, open_storage

DAY = date(2026, 3, 1)


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.integration)])  # a moto server
def storage(request, tmp_path):
    if request.param == "file":
        return open_storage((tmp_path / "root").as_uri())
    return open_storage(request.getfixturevalue("s3_data_url"))


def frame(n: int, offset: int = 0) -> pd.DataFrame:
    return pd.DataFrame(
        {"customer_id": [f"C{i}" for i in range(offset, offset + n)], "tenure": [float(i) for i in range(n)]}
    )


def test_partition_round_trip_and_listing(storage):
    storage.write_partition("landing", DAY, frame(5))
    storage.write_partition("landing", date(2026, 3, 3), frame(2))
    pd.testing.assert_frame_equal(storage.read_partition("landing", DAY), frame(5))
    assert storage.list_partitions("landing") == [DAY, date(2026, 3, 3)]
    assert storage.partition_files("landing", DAY) == ["landing/ds=2026-03-01/part-00000.parquet"]


def test_rewrite_replaces_the_whole_partition(storage):
    storage.write_files("landing/ds=2026-03-01", {"a.parquet": b"x", "b.parquet": b"y"})
    storage.write_partition("landing", DAY, frame(3, offset=10))
    assert storage.partition_files("landing", DAY) == ["landing/ds=2026-03-01/part-00000.parquet"]
    assert storage.read_partition("landing", DAY)["customer_id"].tolist() == ["C10", "C11", "C12"]


def test_failed_write_leaves_previous_partition_intact(storage):
    storage.write_partition("landing", DAY, frame(4))
    with pytest.raises(Exception):  # noqa: B017 - backends fail differently; what matters is the state after
        # The second file cannot be written: the crash happens half way through the partition.
        storage.write_files("landing/ds=2026-03-01", {"part-00000.parquet": b"new", "part-1.parquet": None})
    assert storage.read_partition("landing", DAY).equals(frame(4))
    assert storage.list_keys("_tmp") == [] or all(k.startswith("_tmp") for k in storage.list_keys("_tmp"))
    assert not any(k.startswith("_tmp") for k in storage.list_keys("landing"))


def test_failed_first_write_leaves_no_partition(storage):
    with pytest.raises(Exception):  # noqa: B017 - backends fail differently; what matters is the state after
        storage.write_files("landing/ds=2026-03-02", {"part-00000.parquet": b"ok", "part-1.parquet": None})
    assert not storage.partition_exists("landing", date(2026, 3, 2))
    assert storage.list_partitions("landing") == []


def test_missing_partition_is_a_clear_error(storage):
    with pytest.raises(PartitionNotFound, match="ds=2026-03-01: no parquet files"):
        storage.read_partition("landing", DAY)


def test_a_partition_written_in_chunks_reads_back_whole_and_in_chunks(storage):
    chunks = [frame(3), frame(0, offset=3), frame(4, offset=3)]
    uri = storage.write_partition_chunks("landing", DAY, iter(chunks))
    assert uri.endswith("landing/ds=2026-03-01")
    assert storage.partition_files("landing", DAY) == ["landing/ds=2026-03-01/part-00000.parquet"]
    whole = pd.concat([chunks[0], chunks[2]], ignore_index=True)
    pd.testing.assert_frame_equal(storage.read_partition("landing", DAY), whole)
    assert storage.partition_rows("landing", DAY) == 7
    pieces = list(storage.read_partition_chunks("landing", DAY, rows=2, columns=["customer_id"]))
    assert [len(p) for p in pieces] == [2, 2, 2, 1]
    pd.testing.assert_frame_equal(pd.concat(pieces, ignore_index=True), whole[["customer_id"]])


def test_a_chunked_write_failing_half_way_leaves_the_previous_partition(storage):
    storage.write_partition("landing", DAY, frame(4))

    def chunks():
        yield frame(2, offset=10)
        raise OSError("the source went away")

    with pytest.raises(OSError, match="went away"):
        storage.write_partition_chunks("landing", DAY, chunks())
    assert storage.read_partition("landing", DAY).equals(frame(4))
    assert storage.sweep_tmp(timedelta(0)) == 0  # nothing left staged


def test_move_partition_to_quarantine(storage):
    storage.write_partition("landing", DAY, frame(3))
    uri = storage.move_partition("landing", DAY, "quarantine")
    assert uri.endswith("quarantine/ds=2026-03-01")
    assert not storage.partition_exists("landing", DAY)
    assert len(storage.read_partition("quarantine", DAY)) == 3


def test_two_runs_quarantining_one_batch_at_once_both_end_with_it_quarantined_once(storage):
    import threading

    from churnguard.dataroot import DataRoot

    for k in range(8):
        day = DAY + timedelta(days=k)
        storage.write_partition("landing", day, frame(3))
        barrier, outcomes = threading.Barrier(2), []

        def quarantine(day=day, barrier=barrier, outcomes=outcomes):
            root = DataRoot(open_storage(storage.uri("")))  # each run its own client, as two processes
            barrier.wait()
            try:
                outcomes.append(root.quarantine_batch(day))
            except Exception as exc:  # noqa: BLE001  the assertion below shows it
                outcomes.append(exc)

        runs = [threading.Thread(target=quarantine) for _ in range(2)]
        for run in runs:
            run.start()
        for run in runs:
            run.join(60)
        assert outcomes == [storage.uri(f"quarantine/ds={day}")] * 2
        assert not storage.partition_exists("landing", day)
        assert len(storage.read_partition("quarantine", day)) == 3


def test_write_bytes_is_readable_and_listed(storage):
    uri = storage.write_bytes("reports/ds=2026-03-01/summary.json", b'{"ok": true}')
    assert uri.endswith("reports/ds=2026-03-01/summary.json")
    assert storage.read_bytes("reports/ds=2026-03-01/summary.json") == b'{"ok": true}'
    assert storage.exists("reports/ds=2026-03-01/summary.json")
    assert storage.list_keys("reports") == ["reports/ds=2026-03-01/summary.json"]


def test_unknown_scheme_is_rejected():
    with pytest.raises(ValueError, match="scheme must be file:// or s3://"):
        open_storage("ftp://host/x")


# -- a writer killed at any point (real subprocesses, SIGKILL at each named crash point) -----------------

OLD, NEW = frame(3), frame(4, offset=10)
EARLIER = frame(2, offset=50)  # a batch quarantined before, replaced by the move
SUMMARY = "reports/ds=2026-03-01/summary.json"
PART = "part-00000.parquet"

WRITES = {
    "replace": f"s.write_partition('landing', '2026-03-01', pd.DataFrame({NEW.to_dict('list')!r}))",
    "replace_chunks": f"s.write_partition_chunks('landing', '2026-03-01', [pd.DataFrame({NEW[:2].to_dict('list')!r}), "
    f"pd.DataFrame({NEW[2:].reset_index(drop=True).to_dict('list')!r})])",
    "write_one": f"s.write_bytes({SUMMARY!r}, b'new')",
    "move": "s.move_partition('landing', '2026-03-01', 'quarantine')",
}
# (write, backend, crash point, what the partition or object reads as right after the crash)
CRASH_CASES = [
    *[("replace", backend, "storage.replace.staged", "old") for backend in ("file", "file-fallback", "s3")],
    *[("replace", backend, "storage.replace.swapped", "new") for backend in ("file", "file-fallback", "s3")],
    *[
        ("replace_chunks", backend, point, state)
        for backend in ("file", "file-fallback", "s3")
        for point, state in (("storage.replace.staged", "old"), ("storage.replace.swapped", "new"))
    ],
    ("write_one", "file", "storage.write_one.staged", "old"),
    ("move", "file", "storage.move.target_cleared", "in landing only"),
    ("move", "file", "storage.move.moved", "in quarantine only"),
    ("move", "s3", "storage.move.copied", "in both, identical"),
]


@pytest.fixture
def crash_target(request, tmp_path):
    """(storage, environment of a writer subprocess on the same data root, whether that writer must do
    without RENAME_EXCHANGE) for backend ``request.param``: ``file``, ``file-fallback`` or ``s3``."""
    if request.param == "s3":
        return open_storage(request.getfixturevalue("s3_data_url")), dict(os.environ), False
    url = (tmp_path / "root").as_uri()
    return open_storage(url), {**os.environ, "CHURNGUARD_DATA_URL": url}, request.param == "file-fallback"


def run_writer(env: dict[str, str], write: str, fallback: bool, crash_at: str | None = None):
    """Run one write of :data:`WRITES` in a fresh Python process, killed at ``crash_at`` if given."""
    script = "\n".join(
        [
            "import pandas as pd",
            "from churnguard import storage",
            "storage._renameat2 = None" if fallback else "",  # as on a file system refusing RENAME_EXCHANGE
            "s = storage.open_storage()",
            WRITES[write],
        ]
    )
    env = {**env, "CHURNGUARD_CRASH_AT": crash_at} if crash_at else env
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)


def read_state(storage, area: str) -> pd.DataFrame | None:
    """The partition as a reader sees it: None when missing; at most the one file churnguard writes."""
    assert storage.partition_files(area, DAY) in ([], [f"{area}/ds=2026-03-01/{PART}"])
    return storage.read_partition(area, DAY) if storage.partition_exists(area, DAY) else None


def same(df: pd.DataFrame | None, expected: pd.DataFrame) -> bool:
    return df is not None and df.equals(expected)


def tmp_entries(storage) -> list[str]:
    """What is under ``_tmp/``, listed directly (not through the code under test)."""
    if isinstance(storage, LocalStorage):
        area = storage.root / "_tmp"
        return sorted(p.name for p in area.iterdir()) if area.is_dir() else []
    listing = storage.client.list_objects_v2(Bucket=storage.bucket, Prefix=f"{storage.prefix}/_tmp/")
    return sorted(obj["Key"] for obj in listing.get("Contents", []))


def put_tmp_entry(storage, name: str) -> None:
    """A staging entry as a killed writer leaves it."""
    if isinstance(storage, LocalStorage):
        (storage.root / "_tmp" / name).mkdir(parents=True)
        (storage.root / "_tmp" / name / PART).write_bytes(b"half")
    else:
        storage.client.put_object(Bucket=storage.bucket, Key=f"{storage.prefix}/_tmp/{name}/{PART}", Body=b"half")


def test_every_crash_point_is_tested_and_declared():
    source = Path(storage_module.__file__).read_text()
    assert set(re.findall(r'crash_point\("([^"]+)"\)', source)) == set(CRASH_POINTS)
    assert {point for _, _, point, _ in CRASH_CASES} == set(CRASH_POINTS)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("write", "crash_target", "point", "after_crash"),
    [pytest.param(w, b, p, a, id=f"{b}-{p}") for w, b, p, a in CRASH_CASES],
    indirect=["crash_target"],
)
def test_killed_writer_leaves_old_or_new_never_none_nor_a_mix(write, crash_target, point, after_crash):
    storage, env, fallback = crash_target
    storage.write_partition("landing", DAY, OLD)
    storage.write_bytes(SUMMARY, b"old")
    if write == "move":
        storage.write_partition("quarantine", DAY, EARLIER)

    killed = run_writer(env, write, fallback, crash_at=point)

    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert f"crash point {point} reached" in killed.stderr
    if write.startswith("replace"):
        assert same(read_state(storage, "landing"), {"old": OLD, "new": NEW}[after_crash])
    elif write == "write_one":
        assert storage.read_bytes(SUMMARY) == b"old"
    else:
        landing, quarantine = read_state(storage, "landing"), read_state(storage, "quarantine")
        assert quarantine is None or same(quarantine, EARLIER) or same(quarantine, OLD)  # never a mix
        places = [area for area, df in (("landing", landing), ("quarantine", quarantine)) if same(df, OLD)]
        assert (
            places
            == {
                "in landing only": ["landing"],
                "in quarantine only": ["quarantine"],
                "in both, identical": ["landing", "quarantine"],
            }[after_crash]
        )

    # The same write again, as a retried task does it, completes what the killed one started.
    if write != "move" or storage.partition_exists("landing", DAY):
        redone = run_writer(env, write, fallback)
        assert redone.returncode == 0, redone.stderr[-2000:]
        assert ("replacing partitions file by file" in redone.stderr) == (fallback and write.startswith("replace"))
    if write.startswith("replace"):
        assert same(read_state(storage, "landing"), NEW)
    elif write == "write_one":
        assert storage.read_bytes(SUMMARY) == b"new"
    else:
        assert read_state(storage, "landing") is None
        assert same(read_state(storage, "quarantine"), OLD)
    assert storage.sweep_tmp(timedelta(0)) <= 1  # at most one entry left by the killed writer
    assert tmp_entries(storage) == []


def test_without_exchange_partitions_are_replaced_file_by_file_with_one_warning(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(storage_module, "_renameat2", None)
    monkeypatch.setattr(storage_module, "_fallback_warned", False)
    storage = open_storage((tmp_path / "root").as_uri())
    storage.write_files("landing/ds=2026-03-01", {"a.parquet": b"x", "b.parquet": b"y"})
    storage.write_partition("landing", DAY, OLD)
    storage.write_partition("landing", DAY, NEW)
    assert storage.partition_files("landing", DAY) == [f"landing/ds=2026-03-01/{PART}"]
    assert storage.read_partition("landing", DAY).equals(NEW)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "replacing partitions file by file" in warnings[0]
    assert tmp_entries(storage) == []


def test_sweep_keeps_staging_entries_younger_than_the_grace_period(storage):
    put_tmp_entry(storage, "writer-a")
    put_tmp_entry(storage, "writer-b")
    assert storage.sweep_tmp() == 0  # default grace: one hour
    assert len(tmp_entries(storage)) == 2
    assert storage.sweep_tmp(timedelta(0)) == 2
    assert tmp_entries(storage) == []


def test_sweep_removes_entries_untouched_for_longer_than_the_grace_period(tmp_path, caplog):
    storage = open_storage((tmp_path / "root").as_uri())
    put_tmp_entry(storage, "crashed")
    put_tmp_entry(storage, "in-flight")
    two_hours_ago = time.time() - 7200
    for path in (storage.root / "_tmp" / "crashed", storage.root / "_tmp" / "crashed" / PART):
        os.utime(path, (two_hours_ago, two_hours_ago))
    with caplog.at_level(logging.INFO, logger="churnguard.storage"):
        assert storage.sweep_tmp(timedelta(hours=1)) == 1
    assert tmp_entries(storage) == ["in-flight"]
    assert [r.getMessage() for r in caplog.records if "swept" in r.getMessage()] == [
        f"swept 1 staging entries older than 1:00:00 from file://{storage.root}/_tmp"
    ]
