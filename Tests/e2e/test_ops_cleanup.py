"""The cleanup job: temporary folders, download leftovers, finished state and records past
retention, the per-user usage report, and orphaned library files (deleted only when asked)."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path

import psycopg

from harness import Harness, rfc3339, utcnow
from ops_support import control

OLD = time.time() - 2 * 3600  # older than retention.temp (30m here)


def write(path: Path, size: int, mtime: float | None = OLD) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def age(path: Path, mtime: float = OLD) -> None:
    os.utime(path, (mtime, mtime))


def run_cleanup(h: Harness) -> dict:
    job = h.enqueue("default", "cleanup")
    state = h.wait_state(job, ("completed", "failed"), timeout=60)
    assert state["state"] == "completed", state
    return json.loads(state["result"])


def test_cleanup_sweeps_temp_leftovers_state_records_and_reports_usage_and_orphans(h: Harness):
    # The API's table, as the API would have created it before the daemon ever ran.
    with psycopg.connect(h.database_url, autocommit=True) as conn:
        conn.execute("""CREATE TABLE youtube_downloads (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, playlist_url TEXT NOT NULL,
                        playlist_title TEXT, status TEXT NOT NULL DEFAULT 'queued', file_paths JSONB,
                        plex_collection_id TEXT, created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
                        completed_at TIMESTAMP(3))""")
    retention = {"state": "7d", "jobs": "30d", "temp": "30m", "user_quota": "1KiB"}
    d = h.daemon(retention=retention, cleanup={"delete_orphans": False})
    lib = h.library
    now = utcnow()

    # Temporary folders: finished job (old) goes; active job and a fresh folder stay.
    for name in ("old-finished", "still-active", "fresh-one"):
        write(h.temp / name / "video.f137.mp4.part", 1000, None if name == "fresh-one" else OLD)
    age(h.temp / "old-finished")
    age(h.temp / "still-active")
    write(h.temp / "stray.tmp", 50)
    h.r.hset(h.key("job", "old-finished"), mapping={"state": "failed", "finishedAt": rfc3339(now)})
    h.r.hset(h.key("job", "still-active"), mapping={"state": "active", "type": "sleep", "queue": "default"})

    # The library.
    known = write(lib / "Chan" / "Known [a1].mp4", 2000)
    sidecar = write(lib / "Chan" / "Known [a1].en.vtt", 100)
    other = write(lib / "Chan" / "Other [b2].mkv", 500)
    third = write(lib / "Chan" / "Third [c3].mp4", 300)
    orphan = write(lib / "Chan" / "Orphan.mp4", 700)
    orphan2 = write(lib / "Gone" / "Lonely.webm", 60)
    age(lib / "Gone")
    young = write(lib / "Chan" / "Young.mp4", 10, None)
    part = write(lib / "Chan" / "video.f137.mp4.part", 4000)
    media_part = write(lib / "Chan" / ".Known [a1].mp4.part-123-456", 80)
    fresh_part = write(lib / "Chan" / "live.mp4.part", 90, None)
    hidden = write(lib / ".plexignore", 5)

    # Records: two completed jobs name files, the API's table names a third.
    with psycopg.connect(h.database_url, autocommit=True) as conn:
        rows = [
            ("rec-known", "u1", {"path": str(known), "size": 2000}, now, "completed"),
            ("rec-other", "u2", {"path": str(other), "thumbnail": None}, now, "completed"),
            ("rec-old", "u1", {"path": "/nowhere"}, now - dt.timedelta(days=40), "completed"),
            ("rec-old-failed", None, None, now - dt.timedelta(days=31), "failed"),
            ("rec-recent", None, None, now - dt.timedelta(days=1), "failed"),
        ]
        for job_id, user, result, finished, state in rows:
            conn.execute(
                "INSERT INTO jobs (id, queue, type, user_id, state, result, created_at, finished_at, updated_at) "
                "VALUES (%s, 'default', 'media.convert', %s, %s, %s, %s, %s, %s)",
                (job_id, user, state, json.dumps(result) if result else None, finished, finished, finished))
        conn.execute("INSERT INTO youtube_downloads (id, user_id, playlist_url, status, file_paths) VALUES "
                     "('0b4a1f0e-5a43-4c4e-9a59-3b1d8a6f2c11', 'u3', 'https://youtu.be/x', 'completed', %s)",
                     (json.dumps({"jobId": "7", "files": [{"path": str(third), "size": 300, "filename": third.name}],
                                  "totalSize": 300}),))

    # Redis state: an old finished hash without expiry goes; a recent one gets an expiry; active stays.
    h.r.hset(h.key("job", "old-done"), mapping={"state": "completed", "finishedAt": rfc3339(now - dt.timedelta(days=10))})
    h.r.hset(h.key("job", "recent-done"), mapping={"state": "cancelled", "finishedAt": rfc3339(now - dt.timedelta(days=1))})
    h.r.hset(h.key("job", "running-x"), mapping={"state": "active"})

    result = run_cleanup(h)

    assert result["temp"]["removed"] == 2, result["temp"]
    assert not (h.temp / "old-finished").exists() and not (h.temp / "stray.tmp").exists()
    assert (h.temp / "still-active").exists() and (h.temp / "fresh-one").exists()

    assert result["partials"]["removed"] == 2 and result["partials"]["bytes"] == 4080, result["partials"]
    assert not part.exists() and not media_part.exists() and fresh_part.exists()

    assert result["state"]["removed"] >= 1 and result["state"]["expiring"] >= 1, result["state"]
    assert not h.r.exists(h.key("job", "old-done"))
    ttl = h.r.ttl(h.key("job", "recent-done"))
    assert 5 * 86400 < ttl <= 6 * 86400 + 60, ttl
    assert h.r.ttl(h.key("job", "running-x")) == -1, "an active job's state is never touched"

    assert result["records"]["removed"] == 2, result["records"]
    left = {r[0] for r in h.pg("SELECT id FROM jobs WHERE id LIKE 'rec-%'")}
    assert left == {"rec-known", "rec-other", "rec-recent"}, left

    usage = {u["userId"]: u for u in result["usage"]}
    assert usage["u1"]["bytes"] == 2000 and usage["u1"]["files"] == 1 and usage["u1"]["overQuota"] is True
    assert usage["u2"]["bytes"] == 500 and usage["u2"]["overQuota"] is False
    assert usage["u3"]["bytes"] == 300, "files of youtube_downloads count for their user"
    assert usage["u1"]["quotaBytes"] == 1024

    orphans = result["orphans"]
    assert sorted(orphans["paths"]) == sorted([str(orphan), str(orphan2)]), orphans
    assert orphans["count"] == 2 and orphans["bytes"] == 760 and orphans["deleted"] == 0
    for f in (known, sidecar, other, third, orphan, orphan2, young, hidden):
        assert f.exists(), f"{f} is kept while delete_orphans is off"

    # With delete_orphans on, the orphans go (and the folder they leave empty); nothing else does.
    h.write_config(d.name, retention=retention, cleanup={"delete_orphans": True})
    assert control(d, "reload")["ok"]
    result = run_cleanup(h)
    assert result["orphans"]["deleted"] == 2 and result["orphans"]["foldersRemoved"] == 1, result["orphans"]
    assert not orphan.exists() and not orphan2.exists() and not (lib / "Gone").exists()
    for f in (known, sidecar, other, third, young, hidden, fresh_part):
        assert f.exists(), f"{f} is kept"
    assert result["temp"]["removed"] == 0 and result["records"]["removed"] == 0


def test_cleanup_fires_from_its_schedule_and_fails_visibly_when_the_records_cannot_be_read(h: Harness):
    d = h.daemon(schedules={"cleanup": {"every": "1s", "job": {"type": "cleanup", "queue": "default"}}},
                 queues={"default": {"max_attempts": 1}})
    # Fires from the schedule.
    first = None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and first is None:
        for e in h.events(event="job:completed"):
            if e["jobId"].startswith("schedule:cleanup:"):
                first = e["jobId"]
                break
        time.sleep(0.2)
    assert first, "the cleanup schedule ran a cleanup job"
    assert json.loads(h.job(first)["result"])["orphans"]["count"] == 0

    # When the records cannot be read nothing can be called an orphan: the job fails with a
    # sentence and the library is untouched. (A download row whose file_paths is not JSON.)
    write(h.library / "keep.mp4", 10)
    h.write_config(d.name, schedules={}, queues={"default": {"max_attempts": 1}}, cleanup={"delete_orphans": True})
    assert control(d, "reload")["ok"]
    with psycopg.connect(h.database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS youtube_downloads (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, "
                     "playlist_url TEXT NOT NULL, file_paths JSONB)")
        conn.execute("ALTER TABLE youtube_downloads ALTER COLUMN file_paths TYPE text USING file_paths::text")
        conn.execute("INSERT INTO youtube_downloads (id, user_id, playlist_url, file_paths) VALUES "
                     "('6f1c2d3e-0000-4000-8000-000000000001', 'u9', 'https://youtu.be/y', 'not json')")
    job = h.enqueue("default", "cleanup")
    state = h.wait_state(job, ("completed", "failed"), timeout=30)
    assert state["state"] == "failed", state
    assert "cleanup did only part of its work" in state["error"] and "records could not be read" in state["error"], state["error"]
    assert (h.library / "keep.mp4").exists()
