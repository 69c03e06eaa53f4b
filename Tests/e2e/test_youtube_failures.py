"""youtube.download when things go wrong: missing media, dropped connections, refused links,
hostile titles, the quota, cancel and shutdown in the middle of a throttled download."""

from __future__ import annotations

import json
import signal
import time

from harness import Harness, wait_for
from media_server import ytdlp_processes
from youtube_support import (enqueue_download, library_files, media, media_root,  # noqa: F401 (fixtures)
                             media_server, row, tree_outside_library, wait_row, wait_shared, yt_daemon)


def test_a_missing_file_fails_at_once_and_is_not_retried(h: Harness, media):
    yt_daemon(h)
    job, download_id = enqueue_download(h, media.url("media/missing.mp4"))
    state = h.wait_state(job, "failed", timeout=30)
    assert state["attempt"] == "1", "a 404 is permanent"
    assert "HTTP 404" in state["error"] and "check the URL" in state["error"], state["error"]
    assert "yt-dlp said:" in state["error"], "yt-dlp's last error line is in the error"
    failed = h.events(job, "youtube:failed")
    assert len(failed) == 1 and failed[0]["willRetry"] is False and failed[0]["downloadId"] == download_id
    r = wait_row(h, download_id, "failed")
    assert "404" in r["error"]
    # The API's row: failed, the error in file_paths.error, the jobId kept.
    api = wait_shared(h, download_id, "failed")
    assert "404" in api["file_paths"]["error"] and api["file_paths"]["jobId"] == job, api
    assert library_files(h) == [] and not any(h.temp.iterdir())


def test_a_connection_dropped_midway_is_retried_and_then_completes(h: Harness, media):
    yt_daemon(h, queue={"backoff": {"initial": "1s", "max": "1s"}})
    media.dropping = True
    job, download_id = enqueue_download(h, media.url("drop/drop.mp4"))

    retry = wait_for(lambda: h.events(job, "youtube:failed"), 40, "the first attempt to fail")[0]
    media.dropping = False
    assert retry["willRetry"] is True, retry
    assert "tried again" in retry["error"], retry["error"]
    state = h.wait_state(job, "completed", timeout=40)
    assert state["attempt"] == "2"
    path = json.loads(state["result"])["path"]
    assert path.endswith("drop [drop].mp4")
    assert (h.library / path).stat().st_size > 10_000
    wait_row(h, download_id, "completed")


def test_links_that_are_refused_fail_before_any_network_access(h: Harness, media):
    yt_daemon(h)
    before = tree_outside_library(h)
    cases = {
        "http://example.com/video.mp4": "not allowed",
        "file:///etc/passwd": "Only http:// and https://",
        "-o/tmp/pwned.%(ext)s": "is not a link",
        "--exec=touch /tmp/pwned": "is not a link",
        f"http://user:secret@127.0.0.1:{media.port}/media/clip.mp4": "user name or password",
        "https://www.youtube.com/@somechannel": "neither a video nor a playlist",
        "https://youtu.be/short": "not a YouTube video id",
    }
    jobs = {enqueue_download(h, url)[0]: expected for url, expected in cases.items()}
    for job, expected in jobs.items():
        state = h.wait_state(job, "failed", timeout=15)
        assert state["attempt"] == "1" and expected in state["error"], (expected, state["error"])
        assert "secret" not in state["error"]
        stages = [e.get("stage") for e in h.events(job, "youtube:progress")]
        assert "metadata" not in stages, "refused before yt-dlp ran"
    assert sum(media.hits.values()) == 0, f"nothing reached the network: {dict(media.hits)}"
    assert library_files(h) == []
    assert tree_outside_library(h) == before
    logs = "\n".join(h.daemons[0].raw_lines())
    assert "secret" not in logs, "a password in a link never reaches the logs"


def test_hostile_titles_and_ids_stay_inside_the_library(h: Harness, media):
    yt_daemon(h)
    before = tree_outside_library(h)
    long_title = "é" * 250  # 500 bytes of UTF-8
    feed = media.add_feed("hostile.xml", "../../Playlist", [
        ("../", media.url("media/one.mp4"), "../../escape"),
        ("/", media.url("media/two.mp4"), "/etc/passwd"),
        (long_title, media.url("media/three.mp4"), "long"),
        (".hidden \u202eCON", media.url("media/title.mp4"), "CON"),
    ])
    parent, _ = enqueue_download(h, feed)
    state = h.wait_state(parent, "completed", timeout=90)
    result = json.loads(state["result"])
    assert result["completed"] == 4, result
    files = library_files(h)
    assert len(files) == 12, [str(f) for f in files]  # media, thumbnail, nfo for each
    root = h.library.resolve()
    for f in files:
        real = f.resolve()
        assert root in real.parents, f"{real} is outside the library"
        rel = real.relative_to(root)
        for part in rel.parts:
            assert not part.startswith("."), rel
            assert "/" not in part and "\u202e" not in part, rel
            assert len(part.encode()) <= 220, (len(part.encode()), rel)
            part.encode("utf-8")
    names = sorted(f.name for f in files if f.suffix == ".mp4")
    assert "⧸ [⧸..⧸escape].mp4" in names and "⧸ [⧸etc⧸passwd].mp4" in names, names
    long_name = next(n for n in names if n.startswith("é"))
    stem = long_name[: -len(".mp4")]
    assert len(stem.encode()) <= 200 and stem.endswith(" [long]"), (len(stem.encode()), stem[-20:])
    assert "hidden CON [CON_].mp4" in names, names
    assert tree_outside_library(h) == before, "nothing written outside the library"


def test_a_download_that_would_pass_the_user_quota_fails_before_it_starts(h: Harness, media):
    yt_daemon(h, retention={"user_quota": "10KiB"})
    job, download_id = enqueue_download(h, media.url("dash/manifest.mpd"), user="user-q")
    state = h.wait_state(job, "failed", timeout=30)
    assert state["attempt"] == "1" and "quota" in state["error"] and "quota of 10 KiB per user" in state["error"], state["error"]
    assert media.count("dash/chunk-stream0-00001.m4s") == 0 and media.count("dash/chunk-stream1-00001.m4s") == 0, \
        "no media segment was downloaded"
    assert library_files(h) == []
    wait_row(h, download_id, "failed")


def test_cancel_stops_a_throttled_download_within_two_seconds(h: Harness, media):
    yt_daemon(h)
    job, download_id = enqueue_download(h, media.url("slow/long.mp4"))
    wait_for(lambda: int(h.job(job).get("downloadedBytes") or 0) > 0, 30, "the download to be under way")
    marker = str(h.temp / job)
    assert ytdlp_processes(marker), "yt-dlp runs for the job"

    started = time.monotonic()
    h.control("cancel", jobId=job)
    wait_for(lambda: h.job(job).get("state") == "cancelled", 2.0, "the job to be cancelled", interval=0.02)
    took = time.monotonic() - started
    assert took < 2.0, took
    assert h.events(job, "youtube:cancelled")
    wait_for(lambda: not (h.temp / job).exists(), 2, "the temporary folder to be removed")
    wait_for(lambda: not ytdlp_processes(marker), 2, "no yt-dlp process left")
    assert library_files(h) == []
    wait_row(h, download_id, "cancelled")


def test_sigterm_hands_an_active_download_back_and_leaves_nothing_behind(h: Harness, media):
    d = yt_daemon(h)
    job, _ = enqueue_download(h, media.url("slow/long.mp4"))
    wait_for(lambda: int(h.job(job).get("downloadedBytes") or 0) > 0, 30, "the download to be under way")
    marker = str(h.temp / job)
    d.signal(signal.SIGTERM)
    assert d.wait(15) == 0
    assert h.job(job)["state"] == "queued", "handed back to the queue"
    assert not (h.temp / job).exists()
    assert not ytdlp_processes(marker)
    assert library_files(h) == []


def test_cancelling_a_playlist_cancels_its_entries(h: Harness, media):
    yt_daemon(h)
    feed = media.add_feed("slow.xml", "Slow Ones", [
        ("Slow one", media.url("slow/long.mp4?n=1"), "slow-1"),
        ("Slow two", media.url("slow/long.mp4?n=2"), "slow-2"),
    ])
    parent, download_id = enqueue_download(h, feed)
    children = [f"{parent}.1", f"{parent}.2"]
    wait_for(lambda: all(int(h.job(c).get("downloadedBytes") or 0) > 0 for c in children), 30, "both entries to download")
    h.control("cancel", jobId=parent)
    h.wait_state(parent, "cancelled", timeout=3)
    for child in children:
        h.wait_state(child, "cancelled", timeout=5)
        wait_for(lambda: not ytdlp_processes(str(h.temp / child)), 3, f"no yt-dlp left for {child}")
    wait_row(h, download_id, "cancelled")
    assert library_files(h) == []
