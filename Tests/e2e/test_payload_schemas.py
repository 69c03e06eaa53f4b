"""Strict payloads (contract sections 1 and 5): a payload field of the wrong type or out of range
fails the job at intake, at once and for good, with an error that names the field; nothing is
defaulted from a value of the wrong type. Well-formed jobs of the same types still complete."""

from __future__ import annotations

import stat
import time
import uuid
from pathlib import Path

import pytest

from harness import Harness, wait_for

QUALITIES = "best, 2160p, 1440p, 1080p, 720p, 480p, 360p, audio"
FORMATS = "mp4, mkv, webm, m4a, mp3"
LANGUAGE = "a language code such as en or pt-BR (1 to 35 letters, digits, - or _)"
TMDB = "a whole number from 1 to 2147483647 or a string of a whole number from 1 to 2147483647"
VIDEO = "http://127.0.0.1:9/never-fetched.mp4"
OVERSEERR = {"requestId": "r1", "mediaType": "movie", "tmdbId": 42}

# type -> [(payload, the sentence the job's error must be)]. Each payload is well formed but for
# one field, of the wrong type or out of range.
WRONG: dict[str, list[tuple[dict, str]]] = {
    "noop": [
        ({"failAttempts": "2"}, "payload.failAttempts must be a whole number ≥ 0"),
        ({"failAttempts": -1}, "payload.failAttempts must be a whole number ≥ 0"),
        ({"failAttempts": 1.5}, "payload.failAttempts must be a whole number ≥ 0"),
        ({"fail": 5}, "payload.fail must be a string"),
        ({"fail": "x", "permanent": "yes"}, "payload.permanent must be true or false"),
    ],
    "sleep": [
        ({"seconds": "abc"}, "payload.seconds must be a number from 0 to 86400"),
        ({"seconds": "1"}, "payload.seconds must be a number from 0 to 86400"),
        ({"seconds": -1}, "payload.seconds must be a number from 0 to 86400"),
        ({"seconds": 86401}, "payload.seconds must be a number from 0 to 86400"),
        ({"seconds": True}, "payload.seconds must be a number from 0 to 86400"),
        ({"seconds": [1]}, "payload.seconds must be a number from 0 to 86400"),
    ],
    "media.convert": [
        ({"format": "mkv"}, "payload.path is required"),
        ({"path": 5, "format": "mkv"}, "payload.path must be a non-empty string"),
        ({"path": "", "format": "mkv"}, "payload.path must be a non-empty string"),
        ({"path": "a.mp4"}, "payload.format is required"),
        ({"path": "a.mp4", "format": "flac"}, f"payload.format must be one of {FORMATS}"),
        ({"path": "a.mp4", "format": 5}, f"payload.format must be one of {FORMATS}"),
    ],
    "media.thumbnail": [
        ({"at": 1}, "payload.path is required"),
        ({"path": ["a.mp4"]}, "payload.path must be a non-empty string"),
        ({"path": "a.mp4", "at": "abc"}, "payload.at must be a number ≥ 0"),
        ({"path": "a.mp4", "at": []}, "payload.at must be a number ≥ 0"),
        ({"path": "a.mp4", "at": -1}, "payload.at must be a number ≥ 0"),
        ({"path": "a.mp4", "width": "abc"}, "payload.width must be a whole number from 16 to 7680"),
        ({"path": "a.mp4", "width": 15}, "payload.width must be a whole number from 16 to 7680"),
        ({"path": "a.mp4", "width": 7681}, "payload.width must be a whole number from 16 to 7680"),
        ({"path": "a.mp4", "width": 160.5}, "payload.width must be a whole number from 16 to 7680"),
        ({"path": "a.mp4", "format": "gif"}, "payload.format must be one of jpeg, jpg, png"),
        ({"path": "a.mp4", "mode": 3}, "payload.mode must be one of keyframe, exact, poster"),
    ],
    "plex.scan": [
        ({"path": 5}, "payload.path must be a non-empty string"),
        ({"path": ""}, "payload.path must be a non-empty string"),
        ({"file": {"x": 1}}, "payload.file must be a non-empty string"),
        ({"file": "/l/v.mp4", "title": 5}, "payload.title must be a string"),
        ({"file": "/l/v.mp4", "collection": ["C"]}, "payload.collection must be a string"),
    ],
    "overseerr.submit": [
        ({"mediaType": "movie", "tmdbId": 42}, "payload.requestId is required"),
        ({**OVERSEERR, "requestId": True}, "payload.requestId must be a string of 1 to 128 characters or a number"),
        ({**OVERSEERR, "requestId": ""}, "payload.requestId must be a string of 1 to 128 characters or a number"),
        ({**OVERSEERR, "mediaType": "book"}, "payload.mediaType must be one of movie, tv"),
        ({**OVERSEERR, "tmdbId": 0}, f"payload.tmdbId must be {TMDB}"),
        ({**OVERSEERR, "tmdbId": "abc"}, f"payload.tmdbId must be {TMDB}"),
        ({**OVERSEERR, "tmdbId": 2147483648}, f"payload.tmdbId must be {TMDB}"),
        ({**OVERSEERR, "mediaType": "tv", "seasons": [1, -1]}, 'payload.seasons must be a list of whole numbers ≥ 0 or "all"'),
        ({**OVERSEERR, "mediaType": "tv", "seasons": "1"}, 'payload.seasons must be a list of whole numbers ≥ 0 or "all"'),
        ({**OVERSEERR, "seasons": [1]}, "payload.seasons only applies to mediaType tv"),
        ({**OVERSEERR, "title": 5}, "payload.title must be a string"),
    ],
    "youtube.download": [
        ({}, "payload.url is required"),
        ({"url": 5}, "payload.url must be a non-empty string"),
        ({"url": VIDEO, "downloadId": "nope"},
         "payload.downloadId must be a UUID such as 3f2c1e9a-8b7d-4c6e-9f01-23456789abcd"),
        ({"url": VIDEO, "quality": 1080}, f"payload.quality must be one of {QUALITIES}"),
        ({"url": VIDEO, "quality": "4k"}, f"payload.quality must be one of {QUALITIES}"),
        ({"url": VIDEO, "format": 5}, f"payload.format must be one of {FORMATS}"),
        ({"url": VIDEO, "format": "avi"}, f"payload.format must be one of {FORMATS}"),
        ({"url": VIDEO, "subtitles": "en"}, "payload.subtitles must be an object"),
        ({"url": VIDEO, "subtitles": {"auto": "yes"}}, "payload.subtitles.auto must be true or false"),
        ({"url": VIDEO, "subtitles": {"embed": 1}}, "payload.subtitles.embed must be true or false"),
        ({"url": VIDEO, "subtitles": {"languages": "en"}},
         "payload.subtitles.languages must be a list of at most 20 language codes such as en or pt-BR "
         "(1 to 35 letters, digits, - or _)"),
        ({"url": VIDEO, "subtitles": {"languages": ["en", 5]}}, f"payload.subtitles.languages[1] must be {LANGUAGE}"),
        ({"url": VIDEO, "collection": 5}, "payload.collection must be a string"),
        ({"url": VIDEO, "subscription": {"id": 5, "videoKey": "generic:a"}}, "payload.subscription.id must be a non-empty string"),
        ({"url": VIDEO, "subscription": {"id": "s"}}, "payload.subscription.videoKey is required"),
    ],
    "youtube.subscription": [
        ({}, "payload.subscriptionId is required"),
        ({"subscriptionId": 5}, "payload.subscriptionId must be a string of 1 to 128 characters"),
        ({"subscriptionId": ""}, "payload.subscriptionId must be a string of 1 to 128 characters"),
    ],
}


def fake_yt_dlp(folder: Path) -> tuple[Path, Path]:
    """A yt-dlp that answers --version and logs every other call (which must never come)."""
    script, calls = folder / "yt-dlp", folder / "yt-dlp.calls"
    script.write_text(f"""#!/bin/sh
if [ "$1" = "--version" ]; then echo 2025.01.01; exit 0; fi
echo "$@" >> '{calls}'
exit 1
""")
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return script, calls


def assert_refused_at_intake(h: Harness, expected: dict[str, str]) -> None:
    """Every job failed at once, with `expected[id]` as its error in Redis and PostgreSQL, and never ran."""
    for job_id, sentence in expected.items():
        state = h.wait_state(job_id, "failed", timeout=15)
        assert state.get("error") == sentence, (job_id, state)
        assert int(state.get("attempt", "0")) <= 1, state
        assert not state.get("startedAt"), f"{job_id} never started: {state}"
    rows = h.wait_pg_states(list(expected), "failed", timeout=30)
    for job_id, sentence in expected.items():
        assert rows[job_id]["error"] == sentence, rows[job_id]
        assert rows[job_id]["attempt"] <= 1, rows[job_id]

    # Never retried and never started, not even a moment later.
    time.sleep(1.5)
    for job_id in expected:
        assert h.job(job_id)["state"] == "failed"
        names = [e["event"] for e in h.events(job_id)]
        for never in ("job:retrying", "job:started", "youtube:started", "job:progress", "youtube:progress"):
            assert never not in names, f"{job_id}: {names}"
    assert h.pg_jobs(list(expected)) and all(r["state"] == "failed" for r in h.pg_jobs(list(expected)).values())


@pytest.mark.parametrize("job_type", list(WRONG))
def test_a_field_of_the_wrong_type_or_out_of_range_fails_at_once_naming_the_field(h: Harness, job_type: str):
    script, calls = fake_yt_dlp(h.workdir)
    h.daemon(youtube={"allowed_hosts": ["127.0.0.1"], "yt_dlp": str(script)})
    expected = {}
    for payload, sentence in WRONG[job_type]:
        expected[h.enqueue("default", job_type, payload, userId="user-1")] = sentence
    good = h.enqueue("default", "noop", {})

    assert_refused_at_intake(h, expected)
    assert h.wait_state(good, "completed", timeout=15), "good jobs flow around the refused ones"
    for job_id, sentence in expected.items():
        assert sentence.startswith("payload."), sentence
        failed = [e for e in h.events(job_id) if e["event"] in ("job:failed", "youtube:failed")]
        assert failed and failed[-1].get("error") == sentence, (job_id, failed)
    if job_type == "youtube.download":
        assert not calls.exists(), f"yt-dlp ran for a refused download: {calls.read_text()}"


def test_a_refused_download_fails_the_row_the_api_made(h: Harness):
    script, calls = fake_yt_dlp(h.workdir)
    h.daemon(youtube={"allowed_hosts": ["127.0.0.1"], "yt_dlp": str(script)})
    wait_for(lambda: h.pg("SELECT 1 FROM information_schema.tables WHERE table_name = 'youtube_downloads'"),
             20, "the youtube_downloads table")
    download_id = str(uuid.uuid4())
    h.pg("INSERT INTO youtube_downloads (id, user_id, playlist_url, status) VALUES (%s, 'user-1', %s, 'queued') RETURNING id",
         (download_id, VIDEO))
    job = h.enqueue("default", "youtube.download", {"downloadId": download_id, "url": VIDEO, "quality": 1080},
                    userId="user-1")
    sentence = f"payload.quality must be one of {QUALITIES}"
    assert_refused_at_intake(h, {job: sentence})
    rows = wait_for(lambda: (r := h.pg("SELECT status, file_paths->>'error' FROM youtube_downloads WHERE id = %s",
                                       (download_id,)))
                    and r[0][0] == "failed" and r, 15, "the download's row to be failed")
    assert rows[0][1] == sentence, rows
    assert not calls.exists()


def test_run_at_out_of_range_is_refused(h: Harness):
    h.daemon()
    offset = h.enqueue("default", "noop", {}, runAt="2026-01-01T00:00:00+25:00")
    day = h.enqueue("default", "noop", {}, runAt="2026-02-30T00:00:00Z")
    month = h.enqueue("default", "noop", {}, runAt="2026-13-01T00:00:00Z")
    leap = h.enqueue("default", "noop", {}, runAt="2025-02-29T12:00:00Z")
    assert_refused_at_intake(h, {
        offset: "'runAt' is not an RFC 3339 timestamp (offset hour 25 is not 0 to 23): \"2026-01-01T00:00:00+25:00\"",
        day: "'runAt' is not an RFC 3339 timestamp (day 30 is past the end of February 2026, which has 28 days): "
             "\"2026-02-30T00:00:00Z\"",
        month: "'runAt' is not an RFC 3339 timestamp (month 13 is not 1 to 12): \"2026-13-01T00:00:00Z\"",
        leap: "'runAt' is not an RFC 3339 timestamp (day 29 is past the end of February 2025, which has 28 days): "
              "\"2025-02-29T12:00:00Z\"",
    })
    # In range (29 February of a leap year, an offset of +23:59, a long fraction): it runs.
    fine = [h.enqueue("default", "noop", {}, runAt=when)
            for when in ("2024-02-29T12:00:00Z", "2026-01-01T23:00:00+23:59", "2026-01-01T00:00:00.123456789Z")]
    h.wait_states(fine, "completed", timeout=15)


def test_well_formed_jobs_of_each_cheap_type_still_complete(h: Harness):
    h.daemon()
    jobs = [
        h.enqueue("default", "noop", {}),
        h.enqueue("default", "noop", {"failAttempts": 0, "fail": None, "permanent": None, "extra": [1, {"x": None}]}),
        h.enqueue("default", "sleep", {}),
        h.enqueue("default", "sleep", {"seconds": 0}),
        h.enqueue("default", "sleep", {"seconds": 0.2}),
        h.enqueue("default", "sleep", {"seconds": None}),
        h.enqueue("default", "cleanup", {}),
        h.enqueue("default", "service.health", {"ignored": True}),
    ]
    h.wait_states(jobs, "completed", timeout=45)
    h.wait_pg_states(jobs, "completed", timeout=30)
    for job_id in jobs:
        assert h.job(job_id)["attempt"] == "1"
