"""yt_dlp: managed and the youtube.update job (contract section 13), with no network: local
wheels of a stand-in yt-dlp (ytdlp_managed_support) in a find-links folder (index_url: none).
The next download uses a new version; a download running during the update keeps its version
and the switch waits for it; a broken version is refused and the old one kept; the schedule
runs per host."""

from __future__ import annotations

import json
import time
from pathlib import Path

from harness import Harness, parse_time, wait_for
from integrations_support import metric
from ops_support import control
from ytdlp_managed_support import build_wheel, calls_of, managed_layout
from youtube_support import (YOUTUBE_QUEUE, enqueue_download, media, media_root,  # noqa: F401 (fixtures)
                             media_server)

OLD, NEW, BROKEN = "2026.11.1", "2026.12.1", "2026.12.2"


def managed_daemon(h: Harness, state: Path, wheels: Path, name: str | None = None,
                   update: dict | None = None, youtube: dict | None = None):
    return h.daemon(
        name,
        paths={"library": str(h.library), "temp": str(h.temp), "state": str(state)},
        queues={"youtube": YOUTUBE_QUEUE},
        youtube={"allowed_hosts": ["127.0.0.1"], "yt_dlp": "managed",
                 "update": {"channel": "stable", "every": "1d", "index_url": "none", "find_links": [str(wheels)],
                            **(update or {})},
                 **(youtube or {})})


def versions_used(calls: Path, since: int = 0) -> list[str]:
    """The versions of the download runs (--load-info-json) after the first `since` calls."""
    return [c["version"] for c in calls_of(calls)[since:] if "--load-info-json" in c["args"]]


def status(d) -> dict:
    answer = control(d, "status")
    assert answer["ok"], answer
    return answer


def update(h: Harness, state: str = "completed", timeout: float = 90) -> dict:
    job = h.enqueue("default", "youtube.update", {})
    return h.wait_state(job, state, timeout=timeout)


def test_an_update_from_local_wheels_is_used_by_the_next_download_and_a_broken_one_is_refused(h: Harness, media):
    wheels, calls, state = h.workdir / "wheels", h.workdir / "calls.jsonl", h.workdir / "state"
    build_wheel(wheels, OLD, calls)
    d = managed_daemon(h, state, wheels)
    # No version at start: the daemon installs the channel's newest.
    wait_for(lambda: managed_layout(state)["current"] == OLD, 90, "the start-up install")
    wait_for(lambda: (status(d).get("ytDlp") or {}).get("version") == OLD, 30, "the yt-dlp check of the managed version")

    job, _ = enqueue_download(h, media.url("media/clip.mp4"))
    h.wait_state(job, "completed", timeout=60)
    assert versions_used(calls) == [OLD]

    build_wheel(wheels, NEW, calls)
    result = json.loads(update(h)["result"])
    assert result["version"] == NEW and result["previous"] == OLD and result["switched"] is True, result
    assert result["channel"] == "stable"
    assert managed_layout(state) == {"current": NEW, "previous": OLD, "versions": [OLD, NEW]}

    seen = len(calls_of(calls))
    job, _ = enqueue_download(h, media.url("media/two.mp4"))
    h.wait_state(job, "completed", timeout=60)
    assert versions_used(calls, seen) == [NEW], "the next download runs the new version"

    yt = status(d)["ytDlp"]
    assert yt["version"] == NEW and yt["channel"] == "stable", yt
    assert metric(h, d, "medianest_ytdlp_info", version=NEW, channel="stable") == 1

    again = json.loads(update(h)["result"])
    assert again["alreadyCurrent"] is True and again["message"] == "already current" and again["version"] == NEW, again

    # A broken newest version: refused, nothing changes, the error says why.
    build_wheel(wheels, BROKEN, calls, broken=True)
    failed = update(h, state="failed")
    assert failed["attempt"] == "1", "a broken version is not retried"
    assert "refused" in failed["error"] and BROKEN in failed["error"] and f"{NEW} stays in use" in failed["error"], failed["error"]
    assert managed_layout(state) == {"current": NEW, "previous": OLD, "versions": [OLD, NEW]}
    seen = len(calls_of(calls))
    job, _ = enqueue_download(h, media.url("media/one.mp4"))
    h.wait_state(job, "completed", timeout=60)
    assert versions_used(calls, seen) == [NEW]


def test_a_running_download_keeps_its_version_and_the_switch_waits_for_it(h: Harness, media):
    wheels, calls, state = h.workdir / "wheels", h.workdir / "calls.jsonl", h.workdir / "state"
    build_wheel(wheels, OLD, calls)
    # yt-dlp pauses 15 s before each download (throttle.sleep_interval): a slow download.
    managed_daemon(h, state, wheels, youtube={"throttle": {"sleep_interval": "15s"}})
    wait_for(lambda: managed_layout(state)["current"] == OLD, 90, "the start-up install")

    slow, _ = enqueue_download(h, media.url("media/clip.mp4"))
    wait_for(lambda: versions_used(calls) == [OLD], 30, "the slow download's yt-dlp run")
    build_wheel(wheels, NEW, calls)
    upd = h.enqueue("default", "youtube.update", {})
    wait_for(lambda: h.job(upd).get("stage") == "waiting for downloads", 60, "the update waiting for the download")
    assert h.job(slow)["state"] == "active"
    assert managed_layout(state)["current"] == OLD, "no switch while a download runs"

    done = h.wait_state(slow, "completed", timeout=90)
    result = json.loads(h.wait_state(upd, "completed", timeout=30)["result"])
    assert result["switched"] is True and result["version"] == NEW, result
    assert float(result["waitedSeconds"]) > 0
    assert parse_time(result["switchedAt"]) >= parse_time(done["finishedAt"]), "switched after the download ended"
    assert versions_used(calls) == [OLD], "the running download finished with the version it started"
    assert managed_layout(state)["current"] == NEW


def test_the_update_schedule_runs_on_every_host_for_itself(h: Harness, media):
    wheels, calls = h.workdir / "wheels", h.workdir / "calls.jsonl"
    build_wheel(wheels, OLD, calls)
    daemons = [managed_daemon(h, h.workdir / f"state-{n}", wheels, name=n, update={"every": "3s"}) for n in ("a", "b")]
    for n in ("a", "b"):
        wait_for(lambda n=n: managed_layout(h.workdir / f"state-{n}")["current"] == OLD, 90, f"the start-up install on {n}")

    def scheduled() -> dict[str, list[dict]]:
        jobs: dict[str, list[dict]] = {}
        for key in h.r.scan_iter(match=h.key("job", "schedule:youtube.update:*")):
            state = h.r.hgetall(key)
            consumer = key.split("schedule:youtube.update:", 1)[1].rsplit(":", 1)[0]
            jobs.setdefault(consumer, []).append(state)
        return jobs

    def each_host_ran_its_own() -> bool:
        jobs = scheduled()
        done = {c: [j for j in js if j.get("state") == "completed" and not json.loads(j["result"]).get("skipped")]
                for c, js in jobs.items()}
        return len(done) >= 2 and all(len(js) >= 1 for js in done.values())

    wait_for(each_host_ran_its_own, 60, "a scheduled update on each host")
    for consumer, jobs in scheduled().items():
        for job in jobs:
            if job.get("state") == "completed" and not json.loads(job["result"]).get("skipped"):
                assert job["worker"] == consumer, "a host's update ran on that host"
                assert json.loads(job["result"])["alreadyCurrent"] is True
    ticks = [key for key in h.r.scan_iter(match=h.key("job", "schedule:youtube.update:*"))]
    assert len(ticks) == len(set(ticks))
    for d in daemons:
        assert d.alive()


def test_without_a_reachable_index_the_log_says_so_and_downloads_wait_until_one_is_installed(h: Harness, media):
    wheels, calls, state = h.workdir / "wheels", h.workdir / "calls.jsonl", h.workdir / "state"
    wheels.mkdir()  # nothing to install: as a host without network
    d = managed_daemon(h, state, wheels)
    wait_for(lambda: any(line.get("msg", "").startswith("managed yt-dlp could not be installed") for line in d.lines()),
             90, "the failed start-up install in the log")
    line = next(line for line in d.lines() if line.get("msg", "").startswith("managed yt-dlp could not be installed"))
    assert line["level"] == "error" and "ytdlp install" in line["msg"] and "pip" in line["error"], line
    wait_for(lambda: (status(d).get("ytDlp") or {}).get("status") == "down", 30, "the yt-dlp check")
    assert "ytdlp install" in status(d)["ytDlp"]["warning"]

    job, _ = enqueue_download(h, media.url("media/clip.mp4"))
    def waiting_job() -> dict | None:
        state = h.job(job)
        return state if "No managed yt-dlp is installed" in state.get("error", "") else None

    waiting = wait_for(waiting_job, 30, "the download waiting")
    assert waiting["state"] not in ("failed", "completed") and int(waiting["attempt"]) <= 1, waiting

    # Once a version is there (here by hand, as an admin would with ytdlp install), the download runs.
    build_wheel(wheels, OLD, calls)
    out = h.cli("ytdlp", "install", config=d.config, timeout=120)
    assert out.returncode == 0 and f"yt-dlp {OLD} (stable) installed" in out.stdout, out.stderr
    state = h.wait_state(job, "completed", timeout=120)
    assert int(state["attempt"]) <= 1, "waiting used no attempt"
    assert versions_used(calls) == [OLD]
