"""A loopback HTTP server of media made by ffmpeg at test time, for the youtube.download tests.

yt-dlp's generic extractor reads everything it serves: direct files, DASH manifests with
separate video and audio, RSS feeds (playlists) and HTML pages with a <video> (titles).

Routes
    /media/<file>      the file (Range requests honoured)
    /slow/<file>       the file at `rate` bytes per second
    /drop/<file>       while `dropping`: headers for the whole file, half of it, then the
                       connection is cut; afterwards the file
    /dash/<file>       DASH manifests (manifest.mpd; subbed.mpd with English subtitles) and segments
    /page/<name>.html  an HTML page with a <title> and a <video> (see add_page)
    /feed/<name>.xml   an RSS feed of enclosures (see add_feed): a playlist
    /private/<file>    the file only with the cookie `required_cookie` (name, value); else 401
    anything else      404

Every request is counted by path (`hits`), so a test can tell whether something was fetched.
"""

from __future__ import annotations

import collections
import html
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CONTENT_TYPES = {
    ".mp4": "video/mp4", ".m4a": "audio/mp4", ".m4s": "video/iso.segment", ".mpd": "application/dash+xml",
    ".xml": "application/rss+xml", ".html": "text/html; charset=utf-8", ".vtt": "text/vtt", ".jpg": "image/jpeg",
}


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True,
                   stdin=subprocess.DEVNULL, timeout=120)


def make_fixtures(root: Path) -> Path:
    """Writes the media into `root` (once per test session): small, fast to make."""
    media = root / "media"
    dash = root / "dash"
    media.mkdir(parents=True, exist_ok=True)
    dash.mkdir(parents=True, exist_ok=True)
    src = ["-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=22050"]
    enc = ["-c:v", "libx264", "-preset", "ultrafast", "-g", "10", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "32k"]
    ffmpeg(*src, "-t", "2", *enc, "-movflags", "+faststart", str(media / "clip.mp4"))
    for name in ("one", "two", "three", "dup", "drop", "title"):
        shutil.copyfile(media / "clip.mp4", media / f"{name}.mp4")
    # A longer clip for throttled downloads (about 120 KB: a minute at 2 KB/s).
    ffmpeg(*src, "-t", "12", *enc, "-b:v", "60k", "-movflags", "+faststart", str(media / "long.mp4"))
    # DASH: video and audio in separate adaptation sets, 1 s segments.
    ffmpeg(*src, "-t", "3", "-map", "0:v", "-map", "1:a", *enc, "-f", "dash", "-seg_duration", "1",
           "-adaptation_sets", "id=0,streams=v id=1,streams=a", str(dash / "manifest.mpd"))
    # The same with English WebVTT subtitles.
    manifest = (dash / "manifest.mpd").read_text()
    subtitles = ('<AdaptationSet id="2" contentType="text" mimeType="text/vtt" lang="en">'
                 '<Representation id="sub-en" bandwidth="256"><BaseURL>subs.en.vtt</BaseURL></Representation>'
                 '</AdaptationSet></Period>')
    (dash / "subbed.mpd").write_text(manifest.replace("</Period>", subtitles))
    (dash / "subs.en.vtt").write_text("WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nHello there\n\n"
                                      "00:00:01.000 --> 00:00:02.500\nSecond line\n")
    return root


class MediaServer:
    """The server, on 127.0.0.1 and a free port, in a thread of its own."""

    def __init__(self, root: Path, rate: int = 4096):
        self.root = root
        self.rate = rate
        self.dropping = False
        self.hits: collections.Counter[str] = collections.Counter()
        self.pages: dict[str, tuple[str, str]] = {}
        # name -> (title, video path, chapters [(start, end, title)]): pages that describe their video in
        # schema.org JSON-LD, whose hasPart clips yt-dlp reads as the video's own chapters.
        self.ld_pages: dict[str, tuple[str, str, list[tuple[float, float, str]]]] = {}
        self.feeds: dict[str, tuple[str, list[tuple[str, str, str]]]] = {}
        self.required_cookie: tuple[str, str] = ("mn_session", "private-cookie-value-0123456789")
        self.cookie_headers: list[str] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_HEAD(self):
                self.route(head=True)

            def do_GET(self):
                self.route(head=False)

            def route(self, head: bool):
                path = self.path.split("?", 1)[0].split("#", 1)[0]
                with server.lock:
                    server.hits[path] += 1
                parts = path.strip("/").split("/", 1)
                if len(parts) != 2 or ".." in parts[1]:
                    return self.not_found()
                kind, name = parts
                if kind == "media":
                    return self.file(server.root / "media" / name, head)
                if kind == "slow":
                    return self.file(server.root / "media" / name, head, rate=server.rate)
                if kind == "drop":
                    return self.file(server.root / "media" / name, head, drop=server.dropping)
                if kind == "private":
                    cookie = self.headers.get("Cookie") or ""
                    with server.lock:
                        server.cookie_headers.append(cookie)
                    wanted = "=".join(server.required_cookie)
                    if wanted not in [c.strip() for c in cookie.split(";")]:
                        return self.unauthorized()
                    return self.file(server.root / "media" / name, head)
                if kind == "dash":
                    return self.file(server.root / "dash" / name, head)
                if kind == "page" and name in server.pages:
                    title, video = server.pages[name]
                    body = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
                            f"<body><video controls><source src='{html.escape(video)}' type='video/mp4'></video></body></html>")
                    return self.bytes(body.encode(), "text/html; charset=utf-8", head)
                if kind == "ldpage" and name in server.ld_pages:
                    title, video, parts = server.ld_pages[name]
                    ld = {"@context": "https://schema.org", "@type": "VideoObject", "name": title,
                          "contentUrl": f"http://127.0.0.1:{server.port}{video}", "encodingFormat": "video/mp4",
                          "hasPart": [{"@type": "Clip", "name": t, "startOffset": a, "endOffset": b} for a, b, t in parts]}
                    body = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                            f"<script type='application/ld+json'>{json.dumps(ld)}</script></head><body></body></html>")
                    return self.bytes(body.encode(), "text/html; charset=utf-8", head)
                if kind == "feed" and name in server.feeds:
                    title, items = server.feeds[name]
                    entries = "".join(
                        f"<item><title>{html.escape(it[0])}</title><guid>{html.escape(it[2])}</guid>"
                        + (f"<pubDate>{html.escape(it[3])}</pubDate>" if len(it) > 3 else "")
                        + f"<enclosure url='{html.escape(it[1])}' type='video/mp4' length='1000'/></item>" for it in items)
                    body = (f"<?xml version='1.0' encoding='UTF-8'?><rss version='2.0'><channel>"
                            f"<title>{html.escape(title)}</title><link>http://127.0.0.1/</link><description>d</description>"
                            f"{entries}</channel></rss>")
                    return self.bytes(body.encode(), "application/rss+xml", head)
                return self.not_found()

            def not_found(self):
                body = b"not found"
                self.send_response(404)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def unauthorized(self):
                body = b"sign in first"
                self.send_response(401)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def bytes(self, body: bytes, ctype: str, head: bool):
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def file(self, path: Path, head: bool, rate: int | None = None, drop: bool = False):
                if not path.is_file():
                    return self.not_found()
                data = path.read_bytes()
                start, end = 0, len(data)
                rng = self.headers.get("Range")
                status = 200
                if rng and rng.startswith("bytes=") and not drop:
                    first, _, last = rng[6:].partition("-")
                    try:
                        start = int(first) if first else 0
                        end = int(last) + 1 if last else len(data)
                    except ValueError:
                        start, end = 0, len(data)
                    end = min(end, len(data))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    status = 206
                self.send_response(status)
                self.send_header("Content-Type", CONTENT_TYPES.get(path.suffix, "application/octet-stream"))
                self.send_header("Content-Length", str(end - start))
                self.send_header("Accept-Ranges", "bytes")
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
                self.end_headers()
                if head:
                    return
                body = data[start:end]
                if drop:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                if rate is None:
                    self.wfile.write(body)
                    return
                chunk = max(rate // 10, 256)
                try:
                    for i in range(0, len(body), chunk):
                        self.wfile.write(body[i:i + chunk])
                        self.wfile.flush()
                        time.sleep(chunk / rate)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="media-server", daemon=True)

    def start(self) -> "MediaServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def add_page(self, name: str, title: str, video: str = "/media/title.mp4") -> str:
        self.pages[name] = (title, video)
        return self.url(f"page/{name}")

    def add_ld_page(self, name: str, title: str, video: str, chapters: list[tuple[float, float, str]]) -> str:
        """A page whose JSON-LD VideoObject names the video and its chapters (hasPart clips)."""
        self.ld_pages[name] = (title, video, chapters)
        return self.url(f"ldpage/{name}")

    def add_feed(self, name: str, title: str, items: list[tuple]) -> str:
        """An RSS feed of (title, enclosure url, guid[, pubDate]) items; yt-dlp takes the guid as
        the id and the pubDate (RFC 822) as the timestamp. Calling it again replaces the feed."""
        self.feeds[name] = (title, items)
        return self.url(f"feed/{name}")

    def count(self, path: str) -> int:
        with self.lock:
            return self.hits["/" + path.lstrip("/")]

    def reset(self) -> None:
        with self.lock:
            self.hits.clear()
            self.cookie_headers.clear()
        self.dropping = False


def ytdlp_processes(marker: str) -> list[int]:
    """Pids of running processes whose command line contains `marker` (a job's temp path, say)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path("/proc", entry, "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if marker in cmdline and int(entry) != os.getpid():
            pids.append(int(entry))
    return pids
