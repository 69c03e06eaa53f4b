"""youtube.download end to end: real yt-dlp against a loopback server of ffmpeg-made media.

Direct files, DASH with separate video and audio, containers and audio, RSS playlists, duplicates."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from harness import Harness, wait_for
from youtube_support import (Subscriber, enqueue_download, library_files, media, media_root,  # noqa: F401 (fixtures)
                             media_server, row, wait_row, wait_shared, yt_daemon)


def probe(path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True, timeout=30)
    return json.loads(out.stdout)


def codecs(path) -> list[tuple[str, str]]:
    return [(s["codec_type"], s["codec_name"]) for s in probe(path)["streams"]]


def test_direct_mp4_lands_in_the_library_with_thumbnail_nfo_events_and_row(h: Harness, media):
    yt_daemon(h)
    sub = Subscriber(h)
    job, download_id = enqueue_download(h, media.url("media/clip.mp4"), quality="best", fmt="mp4")

    state = h.wait_state(job, "completed", timeout=60)
    result = json.loads(state["result"])
    expected = h.library / "Unknown channel" / "clip [clip].mp4"
    assert result["path"] == str(expected), result
    assert expected.is_file() and expected.stat().st_size == result["size"] > 0
    assert result["duplicate"] is False
    thumb = h.library / "Unknown channel" / "clip [clip]-thumb.jpg"
    nfo = h.library / "Unknown channel" / "clip [clip].nfo"
    assert result["thumbnail"] == str(thumb) and thumb.read_bytes()[:2] == b"\xff\xd8", "a JPEG thumbnail beside the file"
    text = nfo.read_text()
    assert "<movie>" in text and "<title>clip</title>" in text and '<uniqueid type="generic" default="true">clip</uniqueid>' in text
    assert codecs(expected) == [("video", "h264"), ("audio", "aac")]
    assert probe(expected)["format"]["tags"].get("title") == "clip", "tags written into the file"
    assert "plexRatingKey" not in result
    assert sorted(p.name for p in library_files(h)) == ["clip [clip]-thumb.jpg", "clip [clip].mp4", "clip [clip].nfo"]
    assert not any(h.temp.iterdir()), "the job's temporary folder is gone"

    # Events, in order, as a subscriber saw them.
    wait_for(lambda: any(e["event"] == "youtube:completed" for e in sub.of(job)), 5, "youtube:completed on P:events")
    events = sub.of(job)
    sub.close()
    names = [e["event"] for e in events]
    assert names[0] == "youtube:started" and names[-1] == "youtube:completed", names
    assert set(names[1:-1]) == {"youtube:progress"}, names
    assert all(e["downloadId"] == download_id for e in events)
    progress = [e for e in events if e["event"] == "youtube:progress"]
    percents = [e["progress"] for e in progress if "progress" in e]
    assert percents == sorted(percents), f"progress never goes back: {percents}"
    assert percents[-1] == 100
    stages = []
    for e in progress:
        if not stages or stages[-1] != e["stage"]:
            stages.append(e["stage"])
    assert stages == ["metadata", "downloading", "converting", "thumbnail", "moving"], stages
    completed = events[-1]
    assert completed["filePath"] == str(expected) and completed["fileSize"] == result["size"]
    assert completed["thumbnail"] == str(thumb)

    # The daemon's record.
    r = wait_row(h, download_id, "completed")
    assert r["file_paths"] == [str(expected)]
    assert r["user_id"] == "user-1" and r["video_id"] == "clip" and r["file_size"] == result["size"]
    assert r["url"] == media.url("media/clip.mp4") and r["completed_at"] is not None and r["job_id"] == job
    # The row the API reads, in its shape and vocabulary.
    api = wait_shared(h, download_id, "completed")
    assert api["user_id"] == "user-1" and api["playlist_url"] == media.url("media/clip.mp4") and api["completed_at"] is not None
    assert api["file_paths"] == {"jobId": job, "files": [{"path": str(expected), "size": result["size"], "filename": expected.name}],
                                 "totalSize": result["size"], "quality": "best", "format": "mp4",
                                 "duration": api["file_paths"]["duration"]}, api
    assert api["file_paths"]["duration"] > 0


def test_dash_merges_separate_video_and_audio_and_formats_convert(h: Harness, media):
    yt_daemon(h)
    dash, _ = enqueue_download(h, media.url("dash/manifest.mpd"), quality="1080p", fmt="mp4")
    mkv, _ = enqueue_download(h, media.url("media/one.mp4"), quality="720p", fmt="mkv")
    audio, _ = enqueue_download(h, media.url("media/two.mp4"), quality="audio", fmt="mp4")

    for job in (dash, mkv, audio):
        h.wait_state(job, "completed", timeout=90)
    merged = json.loads(h.job(dash)["result"])["path"]
    assert merged.endswith("manifest [manifest].mp4")
    assert codecs(merged) == [("video", "h264"), ("audio", "aac")], "one file with both streams"
    assert abs(float(probe(merged)["format"]["duration"]) - 3.0) < 0.3
    stages = [e["stage"] for e in h.events(dash, "youtube:progress")]
    assert "merging" in stages, stages
    # Both DASH streams were fetched, by yt-dlp's own segment downloader.
    assert media.count("dash/init-stream0.m4s") >= 1 and media.count("dash/init-stream1.m4s") >= 1

    mkv_path = json.loads(h.job(mkv)["result"])["path"]
    assert mkv_path.endswith("one [one].mkv")
    info = probe(mkv_path)
    assert info["format"]["format_name"].startswith("matroska") and [s["codec_type"] for s in info["streams"]] == ["video", "audio"]

    m4a = json.loads(h.job(audio)["result"])["path"]
    assert m4a.endswith("two [two].m4a")
    assert codecs(m4a) == [("audio", "aac")]


def test_rss_feed_is_a_playlist_of_three_children_and_a_parent(h: Harness, media):
    yt_daemon(h)
    feed = media.add_feed("three.xml", "Three Little Clips", [
        ("First clip", media.url("media/one.mp4"), "item-1"),
        ("Second clip", media.url("media/two.mp4"), "item-2"),
        ("Third clip", media.url("media/three.mp4"), "item-3"),
    ])
    parent, download_id = enqueue_download(h, feed, quality="best", fmt="mp4",
                                            user="user-7")
    state = h.wait_state(parent, "completed", timeout=90)
    result = json.loads(state["result"])
    children = result["children"]
    assert children == [f"{parent}.1", f"{parent}.2", f"{parent}.3"]
    assert result["count"] == 3 and result["completed"] == 3 and result["failed"] == 0
    for child in children:
        c = h.job(child)
        assert c["state"] == "completed" and c["type"] == "youtube.download" and c["userId"] == "user-7"
    titles = sorted(p.name for p in library_files(h) if p.suffix == ".mp4")
    assert titles == ["First clip [item-1].mp4", "Second clip [item-2].mp4", "Third clip [item-3].mp4"], titles
    nfo = (h.library / "Unknown channel" / "Second clip [item-2].nfo").read_text()
    assert "<set>Three Little Clips</set>" in nfo and "<title>Second clip</title>" in nfo
    assert sorted(result["paths"]) == sorted(str(p) for p in library_files(h) if p.suffix == ".mp4")

    # The parent's row lists every file and names the playlist; each entry has its own row.
    r = wait_row(h, download_id, "completed")
    assert r["playlist_title"] == "Three Little Clips"
    assert sorted(r["file_paths"]) == sorted(result["paths"])
    kids = h.pg("SELECT status, parent_id, playlist_title FROM worker_downloads WHERE parent_id = %s", (download_id,))
    assert len(kids) == 3 and all(k == ("completed", download_id, "Three Little Clips") for k in kids), kids
    # The parent reported its children's mean progress up to 100.
    percents = [e["progress"] for e in h.events(parent, "youtube:progress") if "progress" in e]
    assert percents[-1] == 100 and percents == sorted(percents)


def test_a_duplicate_completes_at_once_without_fetching_the_media_again(h: Harness, media):
    yt_daemon(h)
    url = media.url("media/dup.mp4")
    first, _ = enqueue_download(h, url, quality="720p", fmt="mp4")
    original = json.loads(h.wait_state(first, "completed", timeout=60)["result"])
    fetched = media.count("media/dup.mp4")
    assert fetched >= 1

    started = time.monotonic()
    second, download_id = enqueue_download(h, url, quality="720p", fmt="mp4", user="user-2")
    result = json.loads(h.wait_state(second, "completed", timeout=20)["result"])
    took = time.monotonic() - started
    assert result["duplicate"] is True and result["path"] == original["path"]
    assert media.count("media/dup.mp4") == fetched, "neither the metadata nor the media was fetched again"
    assert took < 3, f"a duplicate completes at once ({took:.2f}s)"
    r = wait_row(h, download_id, "completed")
    assert r["duplicate"] is True and r["file_paths"] == [original["path"]]
    assert len([p for p in library_files(h) if p.suffix == ".mp4"]) == 1

    # Another quality is another file; a file gone from disk is downloaded again.
    (h.library / original["path"]).unlink()
    third, _ = enqueue_download(h, url, quality="720p", fmt="mp4")
    again = json.loads(h.wait_state(third, "completed", timeout=60)["result"])
    assert again["duplicate"] is False and again["path"] == original["path"]
    assert (h.library / original["path"]).is_file()


def test_subtitles_as_srt_sidecars_or_embedded(h: Harness, media):
    yt_daemon(h)
    sidecar, _ = enqueue_download(h, media.url("dash/subbed.mpd"), fmt="mp4", subtitles={"languages": ["en"]})
    result = json.loads(h.wait_state(sidecar, "completed", timeout=60)["result"])
    srt = h.library / "Unknown channel" / "subbed [subbed].en.srt"
    assert result["subtitles"] == [str(srt)]
    text = srt.read_text()
    assert "Hello there" in text and "00:00:01,000 --> 00:00:02,500" in text, text
    assert [s["codec_type"] for s in probe(result["path"])["streams"]] == ["video", "audio"]

    embedded, _ = enqueue_download(h, media.url("dash/subbed.mpd"), fmt="mkv", subtitles={"languages": ["en"], "embed": True})
    result = json.loads(h.wait_state(embedded, "completed", timeout=60)["result"])
    assert result["path"].endswith("subbed [subbed].mkv") and result["subtitles"] == []
    streams = probe(result["path"])["streams"]
    assert [(s["codec_type"], s["codec_name"]) for s in streams] == [("video", "h264"), ("audio", "aac"), ("subtitle", "subrip")]
    assert streams[2]["tags"].get("language") in ("en", "eng")


def test_a_temporary_folder_on_another_file_system_is_copied_into_place(h: Harness, media):
    shm = Path(tempfile.mkdtemp(prefix="mn-yt-", dir="/dev/shm"))
    try:
        assert os.stat(shm).st_dev != os.stat(h.library).st_dev, "the test needs two file systems"
        yt_daemon(h, paths={"temp": str(shm)})
        job, _ = enqueue_download(h, media.url("media/one.mp4"))
        result = json.loads(h.wait_state(job, "completed", timeout=60)["result"])
        assert result["path"] == str(h.library / "Unknown channel" / "one [one].mp4")
        assert codecs(result["path"]) == [("video", "h264"), ("audio", "aac")]
        names = sorted(p.name for p in (h.library / "Unknown channel").iterdir())
        assert names == ["one [one]-thumb.jpg", "one [one].mp4", "one [one].nfo"], names
        assert not any(shm.iterdir()), "nothing left in the temporary folder"
    finally:
        shutil.rmtree(shm, ignore_errors=True)
