"""A daemon that dies (SIGKILL) or stops (SIGTERM) with jobs in hand loses none of them and
runs none twice to completion."""

from __future__ import annotations

import signal
import time

import pytest

from harness import Harness, wait_for


def active_count(h: Harness, ids: list[str]) -> int:
    return sum(1 for s in h.states(ids).values() if s == "active")


@pytest.mark.parametrize("recovery", ["restart", "other-daemon"])
def test_sigkill_while_sleep_jobs_run_loses_nothing_and_completes_each_once(h: Harness, recovery: str):
    a = h.daemon("a", queues={"default": {"concurrency": 4}})
    ids = h.enqueue_many("default", (h.envelope("sleep", {"seconds": 1.5}) for _ in range(6)))
    wait_for(lambda: active_count(h, ids) >= 3, 10, "jobs to be active on daemon a")

    if recovery == "other-daemon":
        h.daemon("b", queues={"default": {"concurrency": 4}})
    a.kill()

    if recovery == "restart":
        a.start()

    h.wait_states(ids, "completed", timeout=40)
    h.wait_pg_states(ids, "completed", timeout=30)
    h.wait_drained("default")
    time.sleep(0.5)
    h.assert_completed_once(ids)


def test_sigterm_lets_running_jobs_finish_then_exits_0_and_hands_back_the_rest(h: Harness):
    d = h.daemon(shutdown_timeout="2s", queues={"default": {"concurrency": 4}})
    short = [h.enqueue("default", "sleep", {"seconds": 0.5}) for _ in range(2)]
    long = [h.enqueue("default", "sleep", {"seconds": 5}) for _ in range(2)]
    wait_for(lambda: active_count(h, short + long) == 4, 10, "all four jobs to be active")

    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    rc = d.wait(timeout=10)
    elapsed = time.monotonic() - t0
    assert rc == 0, f"exit status {rc} after SIGTERM"
    assert elapsed <= 2 + 2.5, f"exited {elapsed:.1f}s after SIGTERM with shutdown_timeout 2s"

    h.assert_states(short, "completed")  # they finished within shutdown_timeout
    for job_id in long:
        state = h.job(job_id)
        assert state["state"] in ("queued", "scheduled"), f"handed back to the queue: {state}"
        assert not h.events(job_id, "job:completed")

    d.start()
    h.wait_states(long, "completed", timeout=30)
    h.wait_pg_states(short + long, "completed", timeout=30)
    h.assert_completed_once(short + long)


def test_sigterm_at_any_moment_of_idle_queues_reads_still_hands_running_jobs_back(h: Harness):
    """Idle queues' fetchers wake every 500 ms from their blocking read. A SIGTERM that lands as one
    wakes must not let that fetcher end before the daemon stops it in its turn (which would cancel
    every service at once, the hand-back of running jobs among them): at every offset across the
    read cycle the running job is handed back and the daemon exits 0."""
    queues = {"default": {"concurrency": 2}, "idle1": {"concurrency": 1}, "idle2": {"concurrency": 1},
              "idle3": {"concurrency": 1}}
    d = h.daemon(shutdown_timeout="1s", queues=queues)
    for offset in (0.0, 0.1, 0.2, 0.3, 0.4, 0.45):
        job = h.enqueue("default", "sleep", {"seconds": 30})
        wait_for(lambda: h.job(job).get("state") == "active", 10, "the job to be active")
        time.sleep(offset)
        d.signal(signal.SIGTERM)
        rc = d.wait(timeout=10)
        assert rc == 0, f"exit status {rc} after SIGTERM at +{offset}s"
        state = h.job(job)
        assert state["state"] in ("queued", "scheduled"), f"handed back at +{offset}s: {state}"
        failed = [line for line in d.lines() if line.get("msg") == "a service of the daemon failed; stopping"]
        assert not failed, f"a service ended before its turn at +{offset}s: {failed}"
        d.start()
        h.r.xadd(h.key("control"), {"cmd": "cancel", "jobId": job})
        wait_for(lambda: h.job(job).get("state") == "cancelled", 15, "the handed-back job to be cancelled")
