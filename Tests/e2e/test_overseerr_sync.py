"""overseerr.sync: media_requests rows follow their requests in Overseerr forward only, and each
change notifies the request's user exactly once (one row, one publish), across a daemon restart
between runs and with two daemons running syncs at the same time; an outage leaves rows alone."""

from __future__ import annotations

import collections
import json
import time

import psycopg
import pytest

from harness import Harness, wait_for
from integrations_support import OVERSEERR_KEY, json_daemon, overseerr, UserMessages  # noqa: F401 (fixture)

SYNC_SCHEDULE = {"overseerr-sync": {"every": "1s", "job": {"type": "overseerr.sync", "queue": "default"}}}


def rows(h: Harness) -> dict[str, dict]:
    # The API's row, and the reason from the daemon's record (the API's table has no error column).
    out = h.pg("SELECT m.id, m.status, m.completed_at, w.error FROM media_requests m "
               "LEFT JOIN worker_media_requests w USING (id)")
    return {r[0]: {"status": r[1], "completed_at": r[2], "error": r[3]} for r in out}


def sync_notices(h: Harness) -> list[dict]:
    out = h.pg("SELECT id::text, user_id, type, title, message, metadata FROM notifications "
               "WHERE metadata->>'jobType' = 'overseerr.sync' ORDER BY created_at")
    return [dict(zip(("id", "user_id", "type", "title", "message", "metadata"), r)) for r in out]


def changes(h: Harness) -> collections.Counter:
    return collections.Counter((n["metadata"]["requestId"], n["metadata"]["status"]) for n in sync_notices(h))


def run_sync(h: Harness, job_id: str, timeout: float = 20) -> dict:
    h.enqueue("default", "overseerr.sync", {}, id=job_id)
    state = h.wait_state(job_id, ("completed", "failed"), timeout=timeout)
    assert state["state"] == "completed", state
    return json.loads(state["result"])


@pytest.mark.timeout(90)
def test_rows_follow_overseerr_forward_and_users_hear_once_per_change(h: Harness, overseerr):
    settings = {"overseerr": {"url": overseerr.url, "api_key": OVERSEERR_KEY}}
    a = json_daemon(h, "a", **settings)
    wait_for(lambda: h.pg("SELECT 1 FROM schema_migrations WHERE version = 3"), 20, "migration 3")
    with psycopg.connect(h.database_url, autocommit=True) as conn:
        for rid, user, title, status, ov in [
            ("r-arrives", "alice", "Dune", "submitted", "101"),      # approved, then available
            ("r-declined", "bob", "Cats", "submitted", "102"),       # declined
            ("r-gone", "carol", "Gone Girl", "submitted", "103"),    # Overseerr answers 404
            ("r-waits", "alice", "Alien", "submitted", "104"),       # pending approval; later available at once
            ("r-done", "dave", "Heat", "completed", "105"),          # already completed: never asked again
            ("r-new", "erin", "Up", "pending", None),                # not submitted: not the sync's
        ]:
            conn.execute("INSERT INTO media_requests (id, user_id, title, media_type, tmdb_id, status, overseerr_id) "
                         "VALUES (%s, %s, %s, 'movie', 1, %s, %s)", (rid, user, title, status, ov))
    overseerr.set_state(101, 2, 3)   # approved, processing
    overseerr.set_state(102, 3, 1)   # declined
    overseerr.set_state(104, 1, 2)   # pending approval
    overseerr.set_state(105, 3, 1)   # would be "declined", but the row is final
    channel = UserMessages(h)
    try:
        # Run 1.
        result = run_sync(h, "sync-1")
        assert result == {"checked": 4, "approved": 1, "completed": 0, "failed": 1, "unchanged": 1, "missing": 1,
                          "errors": 0, "notified": 2}, result
        assert (result["approved"], result["failed"], result["missing"], result["unchanged"], result["notified"]) == (1, 1, 1, 1, 2), result
        r = rows(h)
        assert r["r-arrives"]["status"] == "approved" and r["r-arrives"]["completed_at"] is None
        assert r["r-declined"]["status"] == "failed" and "declined in Overseerr by Admin" in r["r-declined"]["error"]
        assert r["r-gone"]["status"] == "submitted", "a 404 leaves the row as it is"
        assert r["r-waits"]["status"] == "submitted" and r["r-done"]["status"] == "completed" and r["r-new"]["status"] == "pending"
        assert overseerr.gets(105) == [], "final rows are not asked about"
        assert changes(h) == {("r-arrives", "approved"): 1, ("r-declined", "failed"): 1}
        by_request = {n["metadata"]["requestId"]: n for n in sync_notices(h)}
        assert by_request["r-arrives"]["user_id"] == "alice" and by_request["r-arrives"]["title"] == "Request approved"
        assert "Dune" in by_request["r-arrives"]["message"]
        assert by_request["r-declined"]["user_id"] == "bob" and by_request["r-declined"]["type"] == "error"
        assert "declined" in by_request["r-declined"]["message"]
        published = wait_for(lambda: len(p := [n for n in channel.notifications() if n.get("type") == "overseerr.sync"]) >= 2 and p, 10, "two publishes")
        assert {(p["userId"], p["notification"]["title"]) for p in published} == {("alice", "Request approved"), ("bob", "Request declined")}
        assert all(p["channel"] == h.key("user", p["userId"]) and p["jobId"] == "sync-1" for p in published)
        assert {p["notification"]["id"] for p in published} == {n["id"] for n in sync_notices(h)}

        # Run 2, nothing changed in Overseerr: nothing moves, nobody hears anything.
        result = run_sync(h, "sync-2")
        assert (result["checked"], result["approved"], result["failed"], result["notified"]) == (2 + 1, 0, 0, 0), result

        # A restart between runs; then the media arrives.
        a.restart()
        overseerr.set_state(101, 2, 5)
        result = run_sync(h, "sync-3")
        assert result["completed"] == 1 and result["notified"] == 1, result
        r = rows(h)
        assert r["r-arrives"]["status"] == "completed" and r["r-arrives"]["completed_at"] is not None
        assert changes(h)[("r-arrives", "completed")] == 1

        # Two daemons, each syncing on a 1 s schedule and by hand at the same time; the waiting
        # request is approved and available at once, and Overseerr flips the declined one back
        # (ignored: failed is final).
        a.stop()
        a = json_daemon(h, "a2", schedules=SYNC_SCHEDULE, **settings)
        b = json_daemon(h, "b", schedules=SYNC_SCHEDULE, **settings)
        overseerr.set_state(104, 2, 5)
        overseerr.set_state(102, 2, 5)
        for job in ("sync-4a", "sync-4b", "sync-4c", "sync-4d"):
            h.enqueue("default", "overseerr.sync", {}, id=job)
        for job in ("sync-4a", "sync-4b", "sync-4c", "sync-4d"):
            h.wait_state(job, "completed", timeout=20)
        wait_for(lambda: rows(h)["r-waits"]["status"] == "completed", 10, "r-waits completed")
        wait_for(lambda: len({e["jobId"] for e in h.events(event="job:completed")
                              if e["jobId"].startswith("schedule:overseerr-sync:")}) >= 2, 10, "scheduled syncs")
        r = rows(h)
        assert r["r-declined"]["status"] == "failed", "never backwards"
        assert r["r-gone"]["status"] == "submitted"

        # Every change was told once, in a row and in a publish.
        assert changes(h) == {("r-arrives", "approved"): 1, ("r-declined", "failed"): 1,
                              ("r-arrives", "completed"): 1, ("r-waits", "completed"): 1}, changes(h)
        published = wait_for(lambda: len(p := [n for n in channel.notifications() if n.get("type") == "overseerr.sync"]) >= 4 and p, 10, "four publishes")
        time.sleep(1.5)  # more scheduled runs: still nothing new
        published = [n for n in channel.notifications() if n.get("type") == "overseerr.sync"]
        counted = collections.Counter(p["notification"]["id"] for p in published)
        assert sorted(counted.values()) == [1, 1, 1, 1], counted
        assert set(counted) == {n["id"] for n in sync_notices(h)}
        assert len(sync_notices(h)) == 4

        # Overseerr away: rows stay as they are, and the job does not complete while it is.
        with psycopg.connect(h.database_url, autocommit=True) as conn:
            conn.execute("UPDATE media_requests SET status = 'submitted' WHERE id = 'r-new'")
            conn.execute("UPDATE media_requests SET overseerr_id = '106' WHERE id = 'r-new'")
        overseerr.set_state(106, 2, 5)
        overseerr.fail_gets = 503
        h.enqueue("default", "overseerr.sync", {}, id="sync-down", maxAttempts=1)
        time.sleep(3)
        state = h.job("sync-down")
        assert state["state"] != "completed", state
        assert rows(h)["r-new"]["status"] == "submitted"
        assert ("r-new", "completed") not in changes(h)
        overseerr.fail_gets = None
        # Back: the next sync that gets through (by hand or scheduled) moves it, once.
        state = h.wait_state("sync-down", ("completed", "failed"), timeout=30)
        if state["state"] == "failed":
            assert "503" in state["error"], state
        wait_for(lambda: rows(h)["r-new"]["status"] == "completed", 30, "r-new completed after the outage")
        time.sleep(1.5)
        assert changes(h)[("r-new", "completed")] == 1
    finally:
        channel.close()
