"""Overseerr: the request row is committed before the call, `submitted` or `failed` after, the
user is notified either way; a 4xx fails at once, a 5xx is retried."""

from __future__ import annotations

import json

import psycopg

from harness import Harness, wait_for
from integrations_support import OVERSEERR_KEY, json_daemon, overseerr, UserMessages  # noqa: F401 (fixture)

QUEUES = {"default": {"concurrency": 4, "max_attempts": 3, "backoff": {"initial": "200ms", "max": "500ms"}, "timeout": "60s"}}


def overseerr_config(server) -> dict:
    return {"url": server.url, "api_key": OVERSEERR_KEY}


def request_row(h: Harness, request_id: str) -> dict | None:
    """The daemon's record of a request (worker_media_requests: every request, with its error)."""
    rows = h.pg("SELECT id, user_id, title, media_type, tmdb_id, status, overseerr_id, error FROM worker_media_requests "
                "WHERE id = %s", (request_id,))
    cols = ("id", "user_id", "title", "media_type", "tmdb_id", "status", "overseerr_id", "error")
    return dict(zip(cols, rows[0])) if rows else None


def shared_row(h: Harness, request_id: str) -> dict | None:
    """The API's row (media_requests, in the API's shape: tmdb_id text, no error column)."""
    rows = h.pg("SELECT id, user_id, title, media_type, tmdb_id, status, overseerr_id FROM media_requests WHERE id = %s",
                (request_id,))
    cols = ("id", "user_id", "title", "media_type", "tmdb_id", "status", "overseerr_id")
    return dict(zip(cols, rows[0])) if rows else None


def notifications(h: Harness, user: str) -> list[dict]:
    rows = h.pg("SELECT type, title, message, read, metadata FROM notifications WHERE user_id = %s ORDER BY created_at", (user,))
    return [dict(zip(("type", "title", "message", "read", "metadata"), r)) for r in rows]


def test_a_request_is_recorded_before_the_call_then_submitted_and_the_user_told(h: Harness, overseerr):
    json_daemon(h, overseerr=overseerr_config(overseerr), queues=QUEUES)
    seen_at_call: list = []
    overseerr.on_request = lambda r: seen_at_call.append(shared_row(h, "req-1")) if r["method"] == "POST" else None
    channel = UserMessages(h, "user-7")
    try:
        job = h.enqueue("default", "overseerr.submit",
                        {"requestId": "req-1", "mediaType": "tv", "tmdbId": 1399, "seasons": [1, 2], "title": "Game of Thrones"},
                        userId="user-7")
        state = h.wait_state(job, "completed", timeout=20)
        result = json.loads(state["result"])
        assert result["status"] == "submitted" and result["overseerrId"] == "17", result

        # The row existed, pending, when Overseerr was called.
        assert seen_at_call and seen_at_call[0] is not None, "no media_requests row at the time of the call"
        assert seen_at_call[0]["status"] == "pending" and seen_at_call[0]["user_id"] == "user-7"

        post = overseerr.posts()[0]
        assert post["headers"]["x-api-key"] == OVERSEERR_KEY
        assert post["json"] == {"mediaType": "tv", "mediaId": 1399, "seasons": [1, 2]}

        row = wait_for(lambda: (r := request_row(h, "req-1")) and r["status"] == "submitted" and r, 10, "row submitted")
        assert row["overseerr_id"] == "17" and row["tmdb_id"] == 1399 and row["media_type"] == "tv"
        shared = wait_for(lambda: (r := shared_row(h, "req-1")) and r["status"] == "submitted" and r, 10, "API row submitted")
        assert shared == {"id": "req-1", "user_id": "user-7", "title": "Game of Thrones", "media_type": "tv", "tmdb_id": "1399",
                          "status": "submitted", "overseerr_id": "17"}, shared

        rows = wait_for(lambda: notifications(h, "user-7"), 10, "a notification row")
        assert rows[0]["type"] == "success" and rows[0]["title"] == "Request submitted", rows
        assert "Game of Thrones" in rows[0]["message"] and rows[0]["read"] is False
        assert rows[0]["metadata"]["jobId"] == job
        published = wait_for(channel.notifications, 10, "the notification on P:user:user-7")
        assert published[0]["notification"]["title"] == "Request submitted"
    finally:
        channel.close()


def test_a_4xx_fails_at_once_and_a_5xx_is_retried(h: Harness, overseerr):
    json_daemon(h, overseerr=overseerr_config(overseerr), queues=QUEUES)
    overseerr.script[999] = [400]
    overseerr.script[550] = [500, 503, 502, 201]  # the first attempt's three tries fail; the second attempt succeeds
    overseerr.script[13] = [500]

    # One at a time: five failures in a row would open Overseerr's breaker.
    refused = h.enqueue("default", "overseerr.submit", {"requestId": "r-400", "mediaType": "movie", "tmdbId": 999}, userId="u1")
    state = h.wait_state(refused, "failed", timeout=20)
    assert state["attempt"] == "1", "a 4xx is not retried"
    assert "Overseerr answered HTTP 400" in state["error"] and "is not a movie" in state["error"], state
    assert len(overseerr.posts(999)) == 1, "and not tried again within the call"
    row = wait_for(lambda: (r := request_row(h, "r-400")) and r["status"] == "failed" and r, 10, "r-400 failed")
    assert "400" in row["error"]

    flaky = h.enqueue("default", "overseerr.submit", {"requestId": "r-5xx", "mediaType": "movie", "tmdbId": 550}, userId="u1")
    state = h.wait_state(flaky, "completed", timeout=30)
    assert state["attempt"] == "2", state
    assert len(overseerr.posts(550)) == 4, "three tries in the first attempt, one in the second"
    assert wait_for(lambda: (r := request_row(h, "r-5xx")) and r["status"] == "submitted", 10, "r-5xx submitted")

    broken = h.enqueue("default", "overseerr.submit", {"requestId": "r-down", "mediaType": "movie", "tmdbId": 13},
                       userId="u1", maxAttempts=1)
    state = h.wait_state(broken, "failed", timeout=30)
    assert state["attempt"] == "1" and "HTTP 500" in state["error"], state
    assert len(overseerr.posts(13)) == 3
    assert wait_for(lambda: (r := request_row(h, "r-down")) and r["status"] == "failed", 10, "r-down failed")

    # The user hears of each outcome.
    rows = wait_for(lambda: len(rows := notifications(h, "u1")) >= 3 and rows, 10, "three notifications")
    titles = sorted(r["title"] for r in rows)
    assert titles == ["Request failed", "Request failed", "Request submitted"], rows
    errors = h.pg("SELECT correlation_id, error_code FROM error_logs ORDER BY created_at")
    assert sorted(e[0] for e in errors) == sorted([refused, broken]) and {e[1] for e in errors} == {"JOB_FAILED"}


def test_already_requested_counts_as_submitted_and_bad_payloads_fail_cleanly(h: Harness, overseerr):
    json_daemon(h, overseerr=overseerr_config(overseerr), queues=QUEUES)
    overseerr.script[42] = [409]
    job = h.enqueue("default", "overseerr.submit", {"requestId": "dup", "mediaType": "movie", "tmdbId": 42})
    state = h.wait_state(job, "completed", timeout=20)
    assert json.loads(state["result"]).get("alreadyRequested") is True
    assert wait_for(lambda: (r := request_row(h, "dup")) and r["status"] == "submitted", 10, "dup submitted")
    # No user and no title: the API's table cannot hold it (NOT NULL); Overseerr was still called.
    assert shared_row(h, "dup") is None and len(overseerr.posts(42)) == 1

    bad = h.enqueue("default", "overseerr.submit", {"requestId": "x", "mediaType": "book", "tmdbId": 1})
    state = h.wait_state(bad, "failed", timeout=20)
    # Refused by the payload schema before any attempt (contract section 1).
    assert state["error"] == "payload.mediaType must be one of movie, tv" and state["attempt"] == "0"
    assert overseerr.posts(1) == []


def test_a_request_the_api_created_is_updated_not_duplicated(h: Harness, overseerr):
    json_daemon(h, overseerr=overseerr_config(overseerr), queues=QUEUES)
    wait_for(lambda: h.pg("SELECT 1 FROM schema_migrations WHERE version = 3"), 20, "migration 3")
    with psycopg.connect(h.database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO media_requests (id, user_id, title, media_type, tmdb_id, status) "
                     "VALUES ('api-1', 'owner', 'Dune', 'movie', 438631, 'pending')")
    job = h.enqueue("default", "overseerr.submit", {"requestId": "api-1", "mediaType": "movie", "tmdbId": 438631})
    h.wait_state(job, "completed", timeout=20)
    row = wait_for(lambda: (r := shared_row(h, "api-1")) and r["status"] == "submitted" and r, 10, "api-1 submitted")
    assert row["user_id"] == "owner" and row["title"] == "Dune" and row["overseerr_id"] is not None
    assert h.pg("SELECT count(*) FROM media_requests")[0][0] == 1
    # The job had no userId: the request's owner is told.
    rows = wait_for(lambda: notifications(h, "owner"), 10, "the owner's notification")
    assert "Dune" in rows[0]["message"]
