"""Commands through P:control: pause and resume a queue on every daemon, cancel jobs."""

from __future__ import annotations

import datetime as dt
import time

from harness import Harness, rfc3339, utcnow


def started(h: Harness, ids: list[str]) -> list[str]:
    """The jobs of `ids` that have started (by their state or their events)."""
    states = h.states(ids)
    began = {e["jobId"] for e in h.events(event="job:started")}
    return [i for i in ids if states[i] in ("active", "completed", "failed") or i in began]


def test_pause_stops_new_starts_on_every_daemon_survives_a_restart_and_resume_starts_them(h: Harness):
    a = h.daemon("a", queues={"default": {"concurrency": 2}})
    b = h.daemon("b", queues={"default": {"concurrency": 2}})

    running = h.enqueue("default", "sleep", {"seconds": 1.5})
    h.wait_state(running, "active", timeout=10)

    h.control("pause", queue="default")
    time.sleep(1.0)  # the contract: within 1 s on every daemon
    paused = [h.enqueue("default", "noop", {}) for _ in range(6)]
    other_queue = h.enqueue("bulk", "noop", {})

    h.wait_state(other_queue, "completed", timeout=10)  # other queues keep running
    h.wait_state(running, "completed", timeout=10)  # a running job finishes
    time.sleep(1.5)
    assert started(h, paused) == [], "no job of a paused queue starts"

    # The pause lasts across restarts.
    assert a.stop() == 0
    assert b.stop() == 0
    a.start()
    more = [h.enqueue("default", "noop", {}) for _ in range(2)]
    time.sleep(2.0)
    assert started(h, paused + more) == [], "still paused after a restart"

    h.control("resume", queue="default")
    h.wait_states(paused + more, "completed", timeout=15)
    h.wait_pg_states(paused + more + [running, other_queue], "completed")
    h.assert_completed_once(paused + more + [running])


def test_cancel_a_queued_a_scheduled_and_an_active_job(h: Harness):
    h.daemon()
    active = h.enqueue("solo", "sleep", {"seconds": 30})
    h.wait_state(active, "active", timeout=10)
    queued = h.enqueue("solo", "noop", {})  # waits behind the active job: solo runs one at a time
    scheduled = h.enqueue("default", "noop", {}, runAt=rfc3339(utcnow() + dt.timedelta(seconds=60)))
    h.wait_state(scheduled, "scheduled", timeout=5)
    time.sleep(0.3)
    assert h.job(queued).get("state") in (None, "queued"), h.job(queued)

    h.control("cancel", jobId=queued)
    h.control("cancel", jobId=scheduled)
    h.wait_state(scheduled, "cancelled", timeout=5)

    t0 = time.monotonic()
    h.control("cancel", jobId=active)
    h.wait_state(active, "cancelled", timeout=5)
    assert time.monotonic() - t0 <= 2.5, "a running job stops within 2 s"

    h.wait_state(queued, "cancelled", timeout=10)
    after = h.enqueue("solo", "noop", {})
    h.wait_state(after, "completed", timeout=10)  # the queue flows on

    time.sleep(0.5)
    for job_id in (queued, scheduled):
        assert not h.events(job_id, "job:started"), f"{job_id} never started"
    for job_id in (queued, scheduled, active):
        assert h.job(job_id)["state"] == "cancelled"
        assert h.events(job_id, "job:cancelled"), f"{job_id}: job:cancelled published"
    h.wait_pg_states([queued, scheduled, active], "cancelled")
