"""SponsorBlock and chapters end to end: real yt-dlp against the loopback media server, a fake
SponsorBlock API on loopback that answers GET /api/skipSegments as the public API does, the cut
and the chapters made in-process, checked with ffprobe."""

from __future__ import annotations

import json
import subprocess
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import Harness
from media_server import ffmpeg
from youtube_support import enqueue_download, media, media_root, media_server, yt_daemon  # noqa: F401 (fixtures)

AAC_FRAME = 1024 / 22050  # one audio frame of the fixture


class FakeSponsorBlock:
    """Answers /api/skipSegments?videoID=…&categories=[…] with the segments set for a video id:
    a list of (start, end, category) as the API's JSON, or an HTTP status."""

    def __init__(self):
        self.answers: dict[str, object] = {}
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                video = (query.get("videoID") or [""])[0]
                fake.requests.append({"path": url.path, "videoID": video,
                                      "categories": json.loads((query.get("categories") or ["[]"])[0])})
                answer = fake.answers.get(video, 404) if url.path == "/api/skipSegments" else 404
                if isinstance(answer, int):
                    body, status = (b"Not Found" if answer == 404 else b"Service Unavailable"), answer
                else:
                    body, status = json.dumps([
                        {"segment": [s, e], "UUID": f"uuid-{i}", "category": c, "videoDuration": 60, "actionType": "skip",
                         "locked": 0, "votes": 1, "description": ""} for i, (s, e, c) in enumerate(answer)]).encode(), 200
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if status == 200 else "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sponsorblock():
    fake = FakeSponsorBlock()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def long_clips(media_root):
    """60 s clips (160x120, 10 fps, a keyframe every second, AAC 22.05 kHz) under several names:
    each name is the video id yt-dlp gives, so each test has its own SponsorBlock answer."""
    src = media_root / "media" / "sb60.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=22050",
           "-t", "60", "-c:v", "libx264", "-preset", "ultrafast", "-g", "10", "-pix_fmt", "yuv420p", "-c:a", "aac",
           "-b:a", "32k", "-movflags", "+faststart", str(src))
    for name in ("sbcut", "sb404", "sb503", "sbhostile", "sbchap"):
        (media_root / "media" / f"{name}.mp4").write_bytes(src.read_bytes())
    return media_root


def ffprobe(*args) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-of", "json", *args], capture_output=True, text=True, check=True, timeout=30)
    return json.loads(out.stdout)


def duration(path) -> float:
    return float(ffprobe("-show_format", str(path))["format"]["duration"])


def first_packet(path, stream: str, at_or_after: float) -> float:
    packets = ffprobe("-select_streams", stream, "-show_entries", "packet=pts_time", "-show_packets", str(path))["packets"]
    return min(float(p["pts_time"]) for p in packets if float(p["pts_time"]) >= at_or_after - 1e-4)


def chapters(path) -> list[tuple[float, float, str]]:
    return [(float(c["start_time"]), float(c["end_time"]), c.get("tags", {}).get("title", ""))
            for c in ffprobe("-show_chapters", str(path))["chapters"]]


def sb_daemon(h: Harness, fake: FakeSponsorBlock):
    return yt_daemon(h, youtube={"sponsorblock": {"api": fake.url, "remove": ["sponsor"], "mark": ["intro"]}, "chapters": True})


def run(h: Harness, media, name: str, fmt: str = "mp4") -> dict:
    job, _ = enqueue_download(h, media.url(f"media/{name}.mp4"), quality="best", fmt=fmt)
    state = h.wait_state(job, "completed", timeout=90)
    return json.loads(state["result"])


@pytest.mark.parametrize("fmt", ["mp4", "mkv"])
def test_sponsor_cut_intro_marked_in_sync(h: Harness, media, long_clips, sponsorblock, fmt):
    sponsorblock.answers["sbcut"] = [(20, 30, "sponsor"), (0, 5, "intro")]
    sb_daemon(h, sponsorblock)
    result = run(h, media, "sbcut", fmt)
    # The real API's request: the video id and the JSON list of categories.
    assert sponsorblock.requests == [{"path": "/api/skipSegments", "videoID": "sbcut", "categories": ["sponsor", "intro"]}]
    assert result["sponsorblock"]["removed"] == [{"category": "sponsor", "start": 20, "end": 30}], result
    assert result["sponsorblock"]["seconds"] == 10
    out = result["path"]
    assert abs(duration(out) - 50) <= 1.0 + AAC_FRAME, "60 s minus the sponsor, within one GOP"
    # Audio and video resume together after the cut (output 20 s); Matroska may move both by the priming delay.
    v0, a0 = first_packet(out, "v:0", 0), first_packet(out, "a:0", 0)
    v, a = first_packet(out, "v:0", v0 + 19.99), first_packet(out, "a:0", v0 + 19.99)
    assert abs(v - v0 - 20) <= 0.11, v
    assert abs(v - a) <= AAC_FRAME + 0.002 and abs(v0 - a0) <= AAC_FRAME + 0.002, (v0, a0, v, a)
    ch = chapters(out)
    assert [c[2] for c in ch] == ["Intro"], ch
    assert abs(ch[0][0]) < 0.01 and abs(ch[0][1] - 5) < 0.01
    # The poster is taken from the output, after the cut.
    assert result["thumbnail"] and open(result["thumbnail"], "rb").read(2) == b"\xff\xd8"
    assert "<runtime>1</runtime>" in open(result["nfo"]).read()


@pytest.mark.parametrize("status", [404, 503])
def test_no_segments_or_outage_keeps_the_video_whole(h: Harness, media, long_clips, sponsorblock, status):
    name = f"sb{status}"
    sponsorblock.answers[name] = status
    sb_daemon(h, sponsorblock)
    result = run(h, media, name)
    assert abs(duration(result["path"]) - 60) <= 0.1
    assert result["sponsorblock"]["removed"] == [] and result["sponsorblock"]["seconds"] == 0
    if status == 503:
        assert "kept whole" in result["sponsorblock"]["note"], result
        assert len(sponsorblock.requests) == 2, "one further try after a 5xx, then the download goes on"
    else:
        assert "note" not in result["sponsorblock"]
    assert chapters(result["path"]) == []


def test_the_videos_own_chapters_are_kept_and_shifted_by_the_cut(h: Harness, media, long_clips, sponsorblock):
    url = media.add_ld_page("sbchap", "With chapters", "/media/sbchap.mp4",
                            [(0, 15, "Opening"), (15, 35, "The \u202emiddle\x07"), (35, 60, "End")])
    sponsorblock.answers["sbchap"] = [(20, 30, "sponsor")]
    sb_daemon(h, sponsorblock)
    job, _ = enqueue_download(h, url, quality="best", fmt="mkv")
    result = json.loads(h.wait_state(job, "completed", timeout=90)["result"])
    assert [r["category"] for r in result["sponsorblock"]["removed"]] == ["sponsor"], result
    assert abs(duration(result["path"]) - 50) <= 1.0 + AAC_FRAME
    ch = chapters(result["path"])
    assert [c[2] for c in ch] == ["Opening", "The middle", "End"], ch
    # Opening untouched; the middle loses the 10 s cut out of it; the end moves back by 10 s.
    assert abs(ch[0][0]) < 0.05 and abs(ch[0][1] - 15) < 0.15, ch
    assert abs(ch[1][0] - 15) < 0.15 and abs(ch[1][1] - 25) < 1.1, ch
    assert abs(ch[2][0] - 25) < 1.1 and abs(ch[2][1] - 50) < 1.1, ch


def test_hostile_segment_lists_never_crash(h: Harness, media, long_clips, sponsorblock):
    segments = [(10, 20, "sponsor"), (15, 25, "sponsor"), (55, 500, "sponsor"), (-10, 2, "sponsor"), (40, 30, "sponsor"),
                (3, 4, "intro"), (50, 40, "intro"), (-1, -0.5, "intro")]
    segments += [(30 + (i % 10) * 0.01, 30.005 + (i % 10) * 0.01, "sponsor") for i in range(10_000)]
    sponsorblock.answers["sbhostile"] = segments
    sb_daemon(h, sponsorblock)
    result = run(h, media, "sbhostile", "mkv")
    notes = result["sponsorblock"]["notes"]
    assert any("only the first 1000 are used" in n for n in notes), notes
    assert any("start 40 is not before end 30, refused" in n for n in notes), notes
    assert any("negative, clamped to 0" in n for n in notes), notes
    assert any("past the end" in n for n in notes), notes
    # Removed: 0–2, 10–25, 30–31 (the tiny ones, snapped to the next keyframe), 55–60: 23 s.
    assert abs(duration(result["path"]) - 37) <= 1.1, duration(result["path"])
    assert [c[2] for c in chapters(result["path"])] == ["Intro"]


def test_media_convert_cut_and_chapters_with_strict_payload(h: Harness, long_clips):
    folder = h.library / "Channel"
    folder.mkdir()
    src = folder / "talk.mp4"
    src.write_bytes((long_clips / "media" / "sb60.mp4").read_bytes())
    h.daemon()
    ok = h.enqueue("default", "media.convert", {
        "path": "Channel/talk.mp4", "format": "mkv", "cut": [{"start": 0, "end": 5}, {"start": 20, "end": 30}],
        "chapters": [{"start": 0, "title": "Start"}, {"start": 30, "end": 60, "title": "After\u0007 the break"}]})
    bad = {
        h.enqueue("default", "media.convert", {"path": "Channel/talk.mp4", "format": "mkv", "cut": [{"start": "0", "end": 5}]}): "cut",
        h.enqueue("default", "media.convert", {"path": "Channel/talk.mp4", "format": "mkv", "cut": {"start": 0, "end": 5}}): "cut",
        h.enqueue("default", "media.convert", {"path": "Channel/talk.mp4", "format": "mkv",
                                               "chapters": [{"start": 1, "title": 7}]}): "chapters",
        h.enqueue("default", "media.convert", {"path": "Channel/talk.mp4", "format": "mkv",
                                               "cut": [{"start": 1, "end": 2}] * 1001}): "cut",
    }
    result = json.loads(h.wait_state(ok, "completed", timeout=60)["result"])
    assert result["removedSeconds"] == 15 and result["chapters"] == 2, result
    assert abs(duration(result["path"]) - 45) <= 0.2
    ch = chapters(result["path"])
    assert [c[2] for c in ch] == ["Start", "After the break"], ch
    assert abs(ch[0][1] - 15) < 0.01 and abs(ch[1][0] - 15) < 0.01 and abs(ch[1][1] - 45) < 0.01
    for job_id, field in bad.items():
        job = h.wait_state(job_id, "failed", timeout=30)
        assert field in job["error"] and job["attempt"] == "0", job["error"]
