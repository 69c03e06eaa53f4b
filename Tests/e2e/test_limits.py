"""Queue limits: the start rate limit shared by every host, per-attempt timeouts, leases that
live jobs renew, and queue sizes changed by SIGHUP without a restart."""

from __future__ import annotations

import signal
import time

import pytest

from harness import Harness, parse_time, wait_for


def test_start_rate_limit_is_shared_by_every_host(h: Harness):
    queues = {"limited": {"concurrency": 4, "max_attempts": 1, "rate_limit": {"max": 3, "per": "2s"}}}
    h.daemon("a", queues=queues)
    h.daemon("b", queues=queues)
    ids = h.enqueue_many("limited", (h.envelope("noop", {}) for _ in range(9)))
    h.wait_states(ids, "completed", timeout=30)
    starts = sorted(parse_time(job["startedAt"]) for job in h.jobs(ids))
    # Any 4 consecutive starts span about a window: never more than 3 starts per 2 s across both hosts.
    # (The limit is taken just before a job is read; `startedAt` is stamped a little later, hence the slack.
    # Without the limit all nine start within milliseconds.)
    for i in range(len(starts) - 3):
        assert (starts[i + 3] - starts[i]).total_seconds() >= 1.5, starts
    assert (starts[-1] - starts[0]).total_seconds() < 10, "the limit delays starts, it does not stall them"
    workers = {job["worker"] for job in h.jobs(ids)}
    assert len(workers) == 2, "both hosts took jobs"


def test_an_attempt_past_its_timeout_is_stopped_and_counts_as_a_failure(h: Harness):
    h.daemon()
    job_id = h.enqueue("default", "sleep", {"seconds": 30}, timeoutSeconds=1, maxAttempts=2)
    started = time.monotonic()
    job = h.wait_state(job_id, "failed", timeout=20)
    assert "timed out after" in job["error"], job["error"]
    assert job["attempt"] == "2"
    assert time.monotonic() - started < 15, "both attempts were cut at about a second"
    assert len(h.events(job_id, "job:retrying")) == 1
    assert len(h.events(job_id, "job:failed")) == 1


def test_a_live_job_longer_than_its_lease_is_never_taken_over(h: Harness):
    # lease is 2 s in the test configuration; the job runs 6 s while another daemon looks for stalled jobs.
    h.daemon("a", queues={"solo": {"concurrency": 1}})
    job_id = h.enqueue("solo", "sleep", {"seconds": 6})
    h.wait_state(job_id, "active", timeout=10)
    h.daemon("b", queues={"solo": {"concurrency": 1}})
    job = h.wait_state(job_id, "completed", timeout=30)
    assert job["attempt"] == "1"
    assert len(h.events(job_id, "job:started")) == 1
    assert len(h.events(job_id, "job:completed")) == 1


def test_sighup_changes_queue_sizes_without_a_restart(h: Harness):
    d = h.daemon("d", queues={"solo": {"concurrency": 1}})
    ids = h.enqueue_many("solo", (h.envelope("sleep", {"seconds": 4}) for _ in range(4)))
    h.wait_state(ids[0], "active", timeout=10)
    time.sleep(0.5)
    assert sum(1 for s in h.states(ids).values() if s == "active") == 1
    pid = d.pid
    h.write_config("d", queues={"solo": {"concurrency": 4}})
    d.signal(signal.SIGHUP)
    wait_for(lambda: sum(1 for s in h.states(ids).values() if s == "active") == 4, timeout=5,
             what="all four jobs running after the reload")
    assert d.alive and d.pid == pid, "reloaded in place"
    assert any(line.get("msg") == "configuration reloaded" for line in d.lines())


def test_sighup_with_a_broken_file_keeps_the_running_configuration(h: Harness):
    d = h.daemon("d")
    d.config.write_text("queues: [this is not a map\n")
    d.signal(signal.SIGHUP)
    wait_for(lambda: any("configuration refused" in line.get("msg", "") for line in d.lines()), timeout=5,
             what="the refusal in the log")
    assert d.alive
    job_id = h.enqueue("default", "noop", {})
    h.wait_state(job_id, "completed", timeout=10)
