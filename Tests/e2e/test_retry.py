"""Retries with backoff, maxAttempts, and runAt."""

from __future__ import annotations

import datetime as dt
import time

from harness import Harness, parse_time, rfc3339, utcnow, wait_for

RETRY_QUEUE = {"retry": {"concurrency": 2, "max_attempts": 3,
                         "backoff": {"initial": "300ms", "max": "1s"}, "timeout": "30s"}}


def watch_states(h: Harness, job_id: str, final: str, timeout: float) -> list[str]:
    """Poll the job's state every 10 ms until it is `final`; the distinct states seen, in order."""
    seen: list[str] = []

    def done():
        state = h.r.hget(h.key("job", job_id), "state")
        if state and (not seen or seen[-1] != state):
            seen.append(state)
        return state == final

    wait_for(done, timeout, f"job {job_id} to be {final} (states seen: {seen})", interval=0.01)
    return seen


def test_a_job_that_fails_twice_then_succeeds_completes_at_attempt_3(h: Harness):
    h.daemon(queues=RETRY_QUEUE)
    job_id = h.enqueue("retry", "noop", {"failAttempts": 2})

    seen = watch_states(h, job_id, "completed", timeout=20)
    assert "scheduled" in seen, f"the job waits in `scheduled` during the backoff: {seen}"
    state = h.job(job_id)
    assert state["attempt"] == "3", state
    assert state["maxAttempts"] == "3", state

    starts = [parse_time(e["at"]) for e in h.events(job_id, "job:started")]
    assert len(starts) == 3, h.events(job_id)
    gaps = [(b - a).total_seconds() for a, b in zip(starts, starts[1:])]
    assert all(gap >= 0.15 for gap in gaps), f"backoff between attempts (initial 300ms): gaps {gaps}"
    assert len(h.events(job_id, "job:retrying")) == 2, [e["event"] for e in h.events(job_id)]
    assert len(h.events(job_id, "job:completed")) == 1

    row = h.wait_pg_states([job_id], "completed")[job_id]
    assert row["attempt"] == 3, row


def test_a_job_that_always_fails_ends_failed_after_max_attempts_of_the_envelope(h: Harness):
    h.daemon(queues=RETRY_QUEUE)
    job_id = h.enqueue("retry", "noop", {"fail": "the e2e job failed on purpose"}, maxAttempts=2)

    state = h.wait_state(job_id, "failed", timeout=20)
    assert state["attempt"] == "2", state
    assert state["maxAttempts"] == "2", state
    assert "on purpose" in state.get("error", ""), state
    row = h.wait_pg_states([job_id], "failed")[job_id]
    assert row["attempt"] == 2 and row["max_attempts"] == 2, row
    assert "on purpose" in (row["error"] or ""), row

    time.sleep(1.5)  # longer than the longest backoff: no third attempt comes
    assert h.job(job_id)["attempt"] == "2"
    names = [e["event"] for e in h.events(job_id)]
    assert names.count("job:started") == 2, names
    assert names[-1] == "job:failed", names


def test_a_job_that_always_fails_uses_the_queue_max_attempts(h: Harness):
    h.daemon(queues=RETRY_QUEUE)
    job_id = h.enqueue("retry", "noop", {"fail": "always"})

    state = h.wait_state(job_id, "failed", timeout=20)
    assert state["attempt"] == "3", state
    assert state["maxAttempts"] == "3", state
    row = h.wait_pg_states([job_id], "failed")[job_id]
    assert row["attempt"] == 3, row
    assert len(h.events(job_id, "job:started")) == 3


def test_run_at_in_the_future_is_honoured(h: Harness):
    h.daemon()
    run_at = utcnow() + dt.timedelta(seconds=2.5)
    job_id = h.enqueue("default", "noop", {}, runAt=rfc3339(run_at))
    now_id = h.enqueue("default", "noop", {})

    h.wait_state(job_id, "scheduled", timeout=2)
    h.wait_state(now_id, "completed", timeout=10)
    assert h.job(job_id)["state"] == "scheduled", "not started before runAt"

    state = h.wait_state(job_id, "completed", timeout=15)
    assert parse_time(state["startedAt"]) >= run_at.replace(microsecond=run_at.microsecond // 1000 * 1000), \
        f"started at {state['startedAt']}, runAt {rfc3339(run_at)}"
    started = h.events(job_id, "job:started")
    assert started and parse_time(started[0]["at"]) >= run_at.replace(microsecond=run_at.microsecond // 1000 * 1000)
    h.wait_pg_states([job_id, now_id], "completed")
