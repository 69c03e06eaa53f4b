"""The BullMQ intake (contract section 11), with PyPI's `bullmq` as the MediaNest backend: it adds
jobs and reads them back with BullMQ's own scripts, while the daemon consumes the queue."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest

from bullmq_support import BACKEND_JOB_OPTIONS, BACKEND_QUEUE_DEFAULTS, Bull, returnvalue
from harness import Harness, parse_time, wait_for
from test_backend_tables import api_download, backend_database, download
from youtube_support import media, media_root, media_server, yt_daemon  # noqa: F401 (fixtures)


def bullmq_config(bull: Bull, **queue) -> dict:
    return {"prefix": bull.prefix, "lock_duration": "3s", "sync_every": "100ms",
            "queues": {bull.name: {"queue": "youtube", **queue}}}


@pytest.fixture
def bull(h: Harness):
    b = Bull(h.redis_url, defaults=BACKEND_QUEUE_DEFAULTS)
    yield b
    b.close()


def ours(h: Harness, bull: Bull, job_id: str) -> str:
    return f"bullmq:{bull.name}:{job_id}"


def wait_bull_state(bull: Bull, job_id: str, state: str, timeout: float = 60) -> None:
    wait_for(lambda: bull.state(job_id) == state, timeout, f"BullMQ job {job_id} {state}")


def test_a_backend_download_goes_active_then_completed_with_its_file(h: Harness, bull: Bull, media):
    backend_database(h)
    yt_daemon(h, bullmq=bullmq_config(bull))
    url = media.url("media/clip.mp4")
    download_id = api_download(h, url, "pending")
    added = time.monotonic()
    job_id = bull.add("download-video", {"downloadId": download_id, "userId": "user-1", "url": url, "quality": "720p",
                                         "format": "mp4", "metadata": {"id": "clip", "title": "Clip"}}, **BACKEND_JOB_OPTIONS)
    with psycopg.connect(h.database_url, autocommit=True) as conn:  # as the backend does after the add
        conn.execute("UPDATE youtube_downloads SET file_paths = %s WHERE id = %s", (json.dumps({"jobId": job_id}), download_id))
    states = set()
    progress = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = bull.state(job_id)
        states.add(state)
        job = bull.job(job_id)
        if job is not None:
            progress.add(job.progress)
        if state == "completed":
            break
        time.sleep(0.02)
    assert "active" in states and states <= {"waiting", "prioritized", "active", "completed"}, states
    job = bull.job(job_id)
    assert job.progress == 100 and job.attemptsMade == 1 and job.processedOn and job.finishedOn >= job.processedOn
    result = returnvalue(job)
    assert os.path.isfile(result["path"]) and result["path"].startswith(str(h.library)), result
    assert h.job(ours(h, bull, job_id))["state"] == "completed"
    row = download(h, download_id)
    assert row["status"] == "completed" and row["file_paths"]["jobId"] == job_id and row["file_paths"]["totalSize"] > 0, row
    events = [e["event"] for e in bull.events(h.r) if e.get("jobId") == job_id]
    assert events[0] == "added" and "active" in events and events[-1] == "completed", events
    assert events.count("completed") == 1
    started = h.job(ours(h, bull, job_id))["startedAt"]
    assert started, "our hash says when it started"
    assert time.monotonic() - added < 60


def test_a_404_fails_with_its_reason_and_retries_follow_the_jobs_backoff(h: Harness, bull: Bull, media):
    yt_daemon(h, bullmq=bullmq_config(bull, jobs={"download-video": "youtube.download", "flaky": "noop"}))
    missing = bull.add("download-video", {"downloadId": "3f1c8e2a-1111-4a5b-9c0d-0123456789ab", "userId": "user-1",
                                          "url": media.url("media/missing.mp4")}, **BACKEND_JOB_OPTIONS)
    wait_bull_state(bull, missing, "failed")
    job = bull.job(missing)
    assert "404" in job.failedReason, job.failedReason
    assert job.attemptsMade == 1, "a 404 is permanent: no retry can change it"

    # A job that fails twice, then works: three attempts, with the exponential backoff between them.
    flaky = bull.add("flaky", {"failAttempts": 2}, attempts=3, backoff={"type": "exponential", "delay": 400})
    seen_delayed = False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and bull.state(flaky) != "completed":
        seen_delayed |= bull.state(flaky) == "delayed"
        time.sleep(0.02)
    assert seen_delayed, "between attempts the job waits in delayed"
    job = bull.job(flaky)
    assert bull.state(flaky) == "completed" and job.attemptsMade == 3, (bull.state(flaky), job.attemptsMade)
    starts = [parse_time(e["at"]) for e in h.events(ours(h, bull, flaky), "job:started")]
    assert len(starts) == 3, h.events(ours(h, bull, flaky))
    gaps = [(b - a).total_seconds() for a, b in zip(starts, starts[1:])]
    assert gaps[0] >= 0.38 and gaps[1] >= 0.78, f"exponential 400 ms: waits of 0.4 s then 0.8 s, got {gaps}"

    # Removed by the backend while it waits for its retry: cancelled here, never run again.
    retrying = bull.add("flaky", {"failAttempts": 5}, attempts=5, backoff=3000)
    wait_bull_state(bull, retrying, "delayed", 15)
    bull.remove(retrying)
    wait_for(lambda: h.r.hget(h.key("job", ours(h, bull, retrying)), "state") == "cancelled", 10, "cancelled")
    time.sleep(3.5)
    assert len(h.events(ours(h, bull, retrying), "job:started")) == 1
    assert not h.r.sismember(h.key("bullmq", bull.name, "held"), retrying)

    # Out of attempts: failed, with the error as failedReason and retries-exhausted.
    doomed = bull.add("flaky", {"fail": "the disk is full"}, attempts=2, backoff=200)
    wait_bull_state(bull, doomed, "failed", 30)
    job = bull.job(doomed)
    assert job.failedReason == "the disk is full" and job.attemptsMade == 2, (job.failedReason, job.attemptsMade)
    assert any(e["event"] == "retries-exhausted" and e["jobId"] == doomed for e in bull.events(h.r))


def test_pause_removal_priority_and_retention_are_bullmqs(h: Harness, bull: Bull):
    d = h.daemon(bullmq={"prefix": bull.prefix, "lock_duration": "3s", "sync_every": "100ms",
                         "queues": {bull.name: {"queue": "solo", "jobs": {"work": "noop"}}}})
    bull.pause()
    waiting = [bull.add("work", {}, priority=p) for p in (5, 1, 3)]
    removed = bull.add("work", {})
    later = bull.add("work", {}, delay=1500)
    time.sleep(1.0)
    assert all(bull.state(j) in ("waiting", "prioritized", "paused") for j in waiting), [bull.state(j) for j in waiting]
    assert not h.r.exists(h.key("job", f"bullmq:{bull.name}:{waiting[0]}")), "a paused queue starts nothing"
    status = h.cli("ctl", "status", "--json", config=d.config)
    assert status.returncode == 0, status.stderr
    (shown,) = json.loads(status.stdout)["bullmq"]
    assert shown == {"name": bull.name, "queue": "solo", "paused": True, "waiting": 4, "delayed": 1, "active": 0, "held": 0,
                     "completed": 0, "failed": 0}, shown
    text = h.cli("ctl", "status", config=d.config).stdout
    assert "BULLMQ QUEUE" in text and "PAUSED" in text.split("BULLMQ QUEUE")[1], text
    bull.remove(removed)
    bull.remove(later)
    bull.resume()
    for j in waiting:
        wait_bull_state(bull, j, "completed", 20)
    order = sorted(waiting, key=lambda j: bull.job(j).processedOn)
    assert order == [waiting[1], waiting[2], waiting[0]], "by priority: 1, 3, 5"
    time.sleep(2.0)
    for gone in (removed, later):
        assert bull.job(gone) is None
        assert not h.r.exists(h.key("job", f"bullmq:{bull.name}:{gone}")), "a job removed before it started never runs"

    # removeOnComplete: a number keeps the newest n; true keeps none.
    kept = [bull.add("work", {}, removeOnComplete=2) for _ in range(4)]
    wait_for(lambda: not h.r.scard(h.key("bullmq", bull.name, "held")) and all(
        h.r.hget(h.key("job", f"bullmq:{bull.name}:{j}"), "state") == "completed" for j in kept), 20, "done")
    assert [bull.job(j) is not None for j in kept] == [False, False, True, True]
    gone = bull.add("work", {}, removeOnComplete=True)
    wait_for(lambda: h.r.hget(h.key("job", f"bullmq:{bull.name}:{gone}"), "state") == "completed", 20, "done")
    wait_for(lambda: bull.job(gone) is None, 5, "removed on complete")


def test_cancel_by_our_id_fails_it_in_bullmq_and_bad_jobs_are_refused(h: Harness, bull: Bull):
    h.daemon(bullmq={"prefix": bull.prefix, "lock_duration": "3s", "sync_every": "100ms",
                     "queues": {bull.name: {"queue": "default", "jobs": {"work": "noop", "nap": "sleep", "download-video": "youtube.download"}}}})
    long = bull.add("nap", {"seconds": 30})
    wait_for(lambda: h.r.hget(h.key("job", f"bullmq:{bull.name}:{long}"), "state") == "active", 15, "running")
    assert bull.state(long) == "active" and h.r.get(bull.key(f"{long}:lock"))
    h.control("cancel", jobId=f"bullmq:{bull.name}:{long}")
    wait_bull_state(bull, long, "failed", 15)
    assert bull.job(long).failedReason == "cancelled"
    assert not h.r.lrange(bull.key("active"), 0, -1)

    unknown = bull.add("mystery", {})
    wrong = bull.add("download-video", {"url": "https://www.youtube.com/watch?v=x", "quality": 720})
    extra = bull.add("download-video", {"url": "https://www.youtube.com/watch?v=x", "color": "red"})
    badopts = bull.add("work", {}, attempts="three")
    huge = bull.add("work", {"blob": "x" * 100_000})
    for j in (unknown, wrong, extra, badopts, huge):
        wait_bull_state(bull, j, "failed", 15)
    assert "limit is 64 KiB" in bull.job(huge).failedReason, bull.job(huge).failedReason
    assert "no job type for the BullMQ job name \"mystery\"" in bull.job(unknown).failedReason
    assert "quality" in bull.job(wrong).failedReason, bull.job(wrong).failedReason
    assert "data.color" in bull.job(extra).failedReason
    assert "opts.attempts" in bull.job(badopts).failedReason
    ok = bull.add("work", {})
    wait_bull_state(bull, ok, "completed", 15)

    # After an obliterate BullMQ numbers jobs from 1 again: an id that ran here is not run twice.
    wait_for(lambda: not h.r.scard(h.key("bullmq", bull.name, "held")), 10, "all mirrored")
    bull.run(bull.queue.obliterate(force=True))
    bull.resume()
    again = bull.add("work", {})
    assert again == long == "1"
    wait_bull_state(bull, again, "failed", 15)
    assert "has run here before" in bull.job(again).failedReason
    assert h.job(f"bullmq:{bull.name}:1")["state"] == "cancelled", "our job 1 is the first one, untouched"


SIGKILLED_WORKER = r"""
import asyncio, sys
from bullmq import Worker
async def main():
    async def process(job, token):
        print("took", job.id, flush=True)
        await asyncio.sleep(3600)
    w = Worker(sys.argv[2], process, {"connection": sys.argv[1], "prefix": sys.argv[3], "lockDuration": 1500,
                                     "stalledInterval": 3600000})
    await asyncio.sleep(3600)
asyncio.run(main())
"""


@pytest.mark.timeout(180)
def test_sigkill_mid_download_completes_once_and_a_dead_takers_job_comes_back(h: Harness, bull: Bull, media):
    d = yt_daemon(h, bullmq=bullmq_config(bull))
    job_id = bull.add("download-video", {"downloadId": "3f1c8e2a-2222-4a5b-9c0d-0123456789ab", "userId": "user-1",
                                         "url": media.url("slow/long.mp4")}, **BACKEND_JOB_OPTIONS)
    ours_id = f"bullmq:{bull.name}:{job_id}"
    wait_for(lambda: h.r.hget(h.key("job", ours_id), "stage") == "downloading", 30, "downloading")
    d.signal(signal.SIGKILL)
    d.wait(10)
    assert bull.state(job_id) == "active"
    media.reset()
    d.restart()
    wait_bull_state(bull, job_id, "completed", 120)
    events = [e["event"] for e in bull.events(h.r) if e.get("jobId") == job_id]
    assert events.count("completed") == 1 and "failed" not in events, events
    assert h.event_counts("youtube:completed")[ours_id] == 1, "completed once"
    assert bull.job(job_id).attemptsMade == 2, "the killed attempt counts, as a stalled one does in BullMQ"

    # A job a BullMQ worker took and then died with: its lock lapses, the stalled check puts it back
    # in wait, and the daemon runs it.
    d.stop()
    taker = subprocess.Popen([sys.executable, "-c", SIGKILLED_WORKER, h.redis_url, bull.name, bull.prefix],
                             stdout=subprocess.PIPE, text=True)
    try:
        stalled = bull.add("download-video", {"downloadId": "3f1c8e2a-3333-4a5b-9c0d-0123456789ab", "userId": "user-1",
                                              "url": media.url("media/clip.mp4")}, **BACKEND_JOB_OPTIONS)
        assert taker.stdout.readline().split() == ["took", stalled]
    finally:
        taker.send_signal(signal.SIGKILL)
        taker.wait(10)
    assert bull.state(stalled) == "active"
    d.start()
    wait_bull_state(bull, stalled, "completed", 60)
    assert int(h.r.hget(bull.key(stalled), "stc")) == 1
    assert any(e["event"] == "stalled" and e["jobId"] == stalled for e in bull.events(h.r))
