"""notification.send: one notification to 5,000 users, by list and by audience, one row and one
publish each; a daemon SIGKILLed mid-way and the job taken over by another still leaves exactly
5,000 rows and publishes no user twice; unknown users are skipped and counted."""

from __future__ import annotations

import collections
import json
import signal

import psycopg
import pytest

from harness import Harness, wait_for
from integrations_support import UserMessages

N = 5000

# The MediaNest API's shapes (UPSTREAM.md): created before the daemon migrates, so its
# CREATE TABLE IF NOT EXISTS leaves them as they are.
API_TABLES = """
CREATE TABLE users (
    id TEXT PRIMARY KEY, plex_id TEXT, plex_username TEXT, email TEXT NOT NULL, name TEXT,
    role TEXT NOT NULL DEFAULT 'USER', plex_token TEXT, image TEXT,
    requires_password_change BOOLEAN NOT NULL DEFAULT false,
    created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, last_login_at TIMESTAMP(3),
    status TEXT NOT NULL DEFAULT 'active');
CREATE TABLE notifications (
    id TEXT PRIMARY KEY, user_id TEXT REFERENCES users(id), type TEXT, title TEXT, message TEXT,
    read BOOLEAN, created_at TIMESTAMP(3), read_at TIMESTAMP(3), metadata JSONB);
"""


def job_rows(h: Harness, job_id: str) -> list[tuple]:
    return h.pg("SELECT id::text, user_id, type, title, message, read, metadata FROM notifications "
                "WHERE metadata->>'jobId' = %s", (job_id,))


def row_count(h: Harness, job_id: str) -> int:
    rows = h.pg("SELECT count(*) FROM notifications WHERE metadata->>'jobId' = %s", (job_id,))
    return rows[0][0] if rows else 0


def payload(**extra) -> dict:
    return {"type": "info", "title": "Maintenance tonight", "message": "MediaNest is down 02:00-03:00 UTC.", **extra}


@pytest.mark.timeout(90)
def test_a_list_of_5000_users_without_a_users_table(h: Harness):
    h.daemon("a")
    published = UserMessages(h)
    try:
        users = [f"u{i}" for i in range(N)]
        job = h.enqueue("default", "notification.send", payload(userIds=users + users[:10], metadata={"campaign": "m1"}))
        state = h.wait_state(job, "completed", timeout=40)
        result = json.loads(state["result"])
        assert result == {"sent": N, "stored": N, "alreadySent": 0, "published": N, "unknown": 0}, result

        rows = job_rows(h, job)
        assert len(rows) == N and {r[1] for r in rows} == set(users), "one row per user, a user listed twice once"
        assert all(r[2] == "info" and r[3] == "Maintenance tonight" and r[5] is False for r in rows)
        assert rows[0][6] == {"campaign": "m1", "jobId": job}, rows[0][6]

        messages = wait_for(lambda: len(m := [n for n in published.notifications() if n.get("jobId") == job]) >= N and m, 15, f"{N} publishes")
        assert len(messages) == N, len(messages)
        assert collections.Counter(m["userId"] for m in messages) == collections.Counter(users)
        ids = {r[1]: r[0] for r in rows}
        m = messages[0]
        assert m["channel"] == h.key("user", m["userId"]) and m["type"] == "notification.send" and m["queue"] == "default"
        assert m["notification"]["id"] == ids[m["userId"]] and m["notification"]["read"] is False
        assert m["notification"]["message"] == payload()["message"] and m["notification"]["metadata"]["campaign"] == "m1"

        # Without a users table there is nobody to read an audience from.
        bad = h.enqueue("default", "notification.send", payload(audience={"all": True}))
        state = h.wait_state(bad, "failed", timeout=20)
        assert "users table" in state["error"] and state["attempt"] == "1", state
        wrong = h.enqueue("default", "notification.send", payload(userIds="u1"))
        state = h.wait_state(wrong, "failed", timeout=20)
        assert state["error"].startswith("payload.userIds must be a list") and state["attempt"] == "0", state
    finally:
        published.close()


@pytest.mark.timeout(120)
def test_audience_all_over_5000_users_survives_a_sigkill_and_a_takeover(h: Harness):
    with psycopg.connect(h.database_url, autocommit=True) as conn:
        conn.execute(API_TABLES)
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO users (id, email, role) VALUES (%s, %s, %s)",
                            [(f"user-{i:05d}", f"user{i}@example.com", "ADMIN" if i % 500 == 0 else "USER") for i in range(N)])
    published = UserMessages(h)
    try:
        a = h.daemon("a")
        # Slowed down (100 per batch, 50 ms between batches) so that the kill lands mid-way.
        job = h.enqueue("default", "notification.send", payload(audience={"all": True}, batchSize=100, pause=0.05))
        wait_for(lambda: row_count(h, job) >= 1000, 30, "a fifth of the rows")
        a.kill()
        at_kill = row_count(h, job)
        assert a.proc.returncode == -signal.SIGKILL
        assert at_kill < N, f"the job was not interrupted ({at_kill} rows at the kill)"

        h.daemon("b")  # takes the job over once its lease (2 s) has lapsed
        state = h.wait_state(job, "completed", timeout=60)
        result = json.loads(state["result"])
        assert int(state["attempt"]) >= 2, state
        assert result["sent"] == N and result["unknown"] == 0, result
        assert result["alreadySent"] >= at_kill and result["stored"] == N - result["alreadySent"], (result, at_kill)

        rows = job_rows(h, job)
        assert len(rows) == N, f"{len(rows)} rows after the takeover"
        assert len({r[1] for r in rows}) == N and len({r[0] for r in rows}) == N
        assert h.pg("SELECT count(*) FROM notifications")[0][0] == N, "no second row for anyone"

        # The publishes of both attempts: never a user twice; at most the batch in flight at the kill lost.
        messages = wait_for(lambda: len(m := [n for n in published.notifications() if n.get("jobId") == job]) >= N - 100 and m, 15, "the publishes")
        counts = collections.Counter(m["userId"] for m in messages)
        assert max(counts.values()) == 1, [u for u, n in counts.items() if n > 1][:5]
        assert len(counts) >= N - 100, len(counts)

        # Unknown users are skipped and counted; a role picks its users.
        listed = h.enqueue("default", "notification.send",
                           payload(userIds=["user-00001", "ghost-1", "user-00002", "ghost-2"], type="warning"))
        result = json.loads(h.wait_state(listed, "completed", timeout=20)["result"])
        assert (result["sent"], result["unknown"], result["stored"]) == (2, 2, 2), result
        assert sorted(r[1] for r in job_rows(h, listed)) == ["user-00001", "user-00002"]
        admins = h.enqueue("default", "notification.send", payload(audience={"role": "admin"}))
        result = json.loads(h.wait_state(admins, "completed", timeout=20)["result"])
        assert result["sent"] == N // 500, result
        assert {r[1] for r in job_rows(h, admins)} == {f"user-{i:05d}" for i in range(0, N, 500)}
    finally:
        published.close()
