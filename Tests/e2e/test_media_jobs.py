"""media.convert and media.thumbnail through the queue: outputs beside the input, probed; paths
outside the library refused; a broken input fails permanently without partial output."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import Harness


def ffmpeg(*args: str) -> None:
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is needed to make the media fixtures (scripts/setup installs it)", pytrace=False)
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, timeout=60)


def probe(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", "-show_format", str(path)],
                         check=True, capture_output=True, text=True, timeout=30).stdout
    return json.loads(out)


@pytest.fixture
def clip(h: Harness) -> Path:
    folder = h.library / "Channel"
    folder.mkdir()
    path = folder / "clip [abc].mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=frequency=440",
           "-t", "2", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path))
    return path


def test_convert_remuxes_and_extracts_audio_beside_the_input(h: Harness, clip: Path):
    h.daemon()
    mkv = h.enqueue("default", "media.convert", {"path": "Channel/clip [abc].mp4", "format": "mkv"})
    m4a = h.enqueue("default", "media.convert", {"path": str(clip), "format": "m4a"})
    mp3 = h.enqueue("default", "media.convert", {"path": str(clip), "format": "mp3"})
    for job_id, ext, codecs in ((mkv, "mkv", {"h264", "aac"}), (m4a, "m4a", {"aac"}), (mp3, "mp3", {"mp3"})):
        job = h.wait_state(job_id, "completed", timeout=60)
        result = json.loads(job["result"])
        out = Path(result["path"])
        assert out == clip.with_suffix("." + ext)
        info = probe(out)
        assert {s["codec_name"] for s in info["streams"]} == codecs
        assert abs(float(info["format"]["duration"]) - 2.0) < 0.1
        assert result["size"] == out.stat().st_size
    events = [e["event"] for e in h.events(mkv)]
    assert events[0] == "job:started" and events[-1] == "job:completed"


def test_thumbnail_is_written_beside_the_input(h: Harness, clip: Path):
    h.daemon()
    job_id = h.enqueue("default", "media.thumbnail", {"path": str(clip), "at": 1, "width": 160})
    result = json.loads(h.wait_state(job_id, "completed", timeout=60)["result"])
    thumb = Path(result["path"])
    assert thumb == clip.parent / "clip [abc]-thumb.jpg"
    assert thumb.read_bytes()[:3] == b"\xff\xd8\xff"
    assert (result["width"], result["height"]) == (160, 120)


def test_paths_outside_the_library_and_broken_inputs_fail_without_output(h: Harness, tmp_path: Path):
    outside = tmp_path / "outside.mp4"
    outside.write_bytes(b"x")
    os.symlink(outside, h.library / "link.mp4")
    (h.library / "broken.mp4").write_text("this is not a video\n")
    h.daemon()
    cases = {
        h.enqueue("default", "media.convert", {"path": "../outside.mp4", "format": "mkv"}): "outside the library",
        h.enqueue("default", "media.convert", {"path": "link.mp4", "format": "mkv"}): "outside the library",
        h.enqueue("default", "media.thumbnail", {"path": "/etc/passwd"}): "outside the library",
        h.enqueue("default", "media.convert", {"path": "missing.mp4", "format": "mkv"}): "does not exist",
        h.enqueue("default", "media.convert", {"path": "broken.mp4", "format": "flac"}): "format",
    }
    broken = h.enqueue("default", "media.convert", {"path": "broken.mp4", "format": "mkv"})
    refused_at_intake = {job_id for job_id, words in cases.items() if words == "format"}
    for job_id, words in cases.items():
        job = h.wait_state(job_id, "failed", timeout=30)
        assert words in job["error"], job["error"]
        # A format outside the schema is refused before any attempt (contract section 1).
        expected = "0" if job_id in refused_at_intake else "1"
        assert job["attempt"] == expected, "a permanent failure is not retried"
    job = h.wait_state(broken, "failed", timeout=30)
    assert job["attempt"] == "1"
    assert sorted(p.name for p in h.library.iterdir()) == ["broken.mp4", "link.mp4"]
    assert not (tmp_path / "outside.mkv").exists()
