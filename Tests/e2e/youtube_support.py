"""Fixtures and helpers of the youtube.download tests: the media server, a daemon configured for
downloads from 127.0.0.1, enqueueing as the API does, and event collection with redis-py."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from harness import Harness, wait_for
from media_server import MediaServer, make_fixtures

YOUTUBE_QUEUE = {"concurrency": 4, "max_attempts": 2, "backoff": {"initial": "1s", "max": "2s"}, "timeout": "90s"}


@pytest.fixture(scope="session")
def media_root(tmp_path_factory) -> Path:
    return make_fixtures(tmp_path_factory.mktemp("media"))


@pytest.fixture(scope="session")
def media_server(media_root) -> MediaServer:
    server = MediaServer(media_root).start()
    yield server
    server.stop()


@pytest.fixture
def media(media_server) -> MediaServer:
    media_server.reset()
    yield media_server
    media_server.reset()


def yt_daemon(h: Harness, queue: dict | None = None, youtube: dict | None = None, **overrides):
    """A daemon with a `youtube` queue and yt-dlp allowed to reach 127.0.0.1."""
    q = dict(YOUTUBE_QUEUE, **(queue or {}))
    yt = {"allowed_hosts": ["127.0.0.1"], **(youtube or {})}
    if os.environ.get("MEDIANEST_YT_DLP"):
        yt.setdefault("yt_dlp", os.environ["MEDIANEST_YT_DLP"])
    return h.daemon(queues={"youtube": q}, youtube=yt, **overrides)


def enqueue_download(h: Harness, url: str, quality: str = "best", fmt: str = "mp4", user: str | None = "user-1",
                     job_id: str | None = None, **payload) -> tuple[str, str]:
    """XADD a youtube.download job; returns (job id, download id)."""
    download_id = str(uuid.uuid4())
    body = {"downloadId": download_id, "url": url, "quality": quality, "format": fmt, **payload}
    job = h.enqueue("youtube", "youtube.download", body, id=job_id, userId=user)
    return job, download_id


def row(h: Harness, download_id: str) -> dict | None:
    """The daemon's record of a download (worker_downloads; `files` is the list of paths)."""
    rows = h.pg("SELECT id, user_id, url, playlist_title, status, files, stage, video_id, "
                "quality, format, file_size, duplicate, error, job_id, parent_id, completed_at, "
                "plex_rating_key, plex_collection_id FROM worker_downloads WHERE id = %s", (download_id,))
    if not rows:
        return None
    cols = ("id", "user_id", "url", "playlist_title", "status", "file_paths", "stage", "video_id",
            "quality", "format", "file_size", "duplicate", "error", "job_id", "parent_id", "completed_at",
            "plex_rating_key", "plex_collection_id")
    return dict(zip(cols, rows[0]))


def shared_row(h: Harness, download_id: str) -> dict | None:
    """The MediaNest API's row (youtube_downloads in the API's shape)."""
    rows = h.pg("SELECT id, user_id, playlist_url, playlist_title, status, file_paths, plex_collection_id, created_at, "
                "completed_at FROM youtube_downloads WHERE id = %s", (download_id,))
    cols = ("id", "user_id", "playlist_url", "playlist_title", "status", "file_paths", "plex_collection_id", "created_at",
            "completed_at")
    return dict(zip(cols, rows[0])) if rows else None


def wait_shared(h: Harness, download_id: str, status: str, timeout: float = 15) -> dict:
    return wait_for(lambda: (r := shared_row(h, download_id)) is not None and r["status"] == status and r,
                    timeout, f"youtube_downloads row {download_id} to be {status} (now {shared_row(h, download_id)})")


def wait_row(h: Harness, download_id: str, status: str, timeout: float = 15) -> dict:
    return wait_for(lambda: (r := row(h, download_id)) is not None and r["status"] == status and r,
                    timeout, f"worker_downloads row {download_id} to be {status} (now {row(h, download_id)})")


def library_files(h: Harness) -> list[Path]:
    return sorted(p for p in h.library.rglob("*") if p.is_file())


def tree_outside_library(h: Harness) -> set[str]:
    """Every file under the test's folder except the library, the logs and the configurations."""
    out = set()
    for p in h.workdir.rglob("*"):
        if p.is_file() and h.library not in p.parents and not p.name.endswith((".log", ".yml")):
            out.add(str(p.relative_to(h.workdir)))
    return out


class Subscriber:
    """A redis-py subscriber to P:events, as the API's socket bridge would be."""

    def __init__(self, h: Harness):
        self.pubsub = h.r.pubsub()
        self.pubsub.subscribe(h.key("events"))
        self.events: list[dict] = []
        wait_for(lambda: (m := self.pubsub.get_message(timeout=0.2)) is not None and m["type"] == "subscribe",
                 5, "the subscription to be confirmed", interval=0)

    def poll(self) -> None:
        msg = self.pubsub.get_message(timeout=0.05)
        while msg is not None:
            if msg["type"] == "message":
                self.events.append(json.loads(msg["data"]))
            msg = self.pubsub.get_message(timeout=0.01)

    def of(self, job_id: str) -> list[dict]:
        self.poll()
        return [e for e in self.events if e.get("jobId") == job_id]

    def close(self) -> None:
        self.pubsub.close()
