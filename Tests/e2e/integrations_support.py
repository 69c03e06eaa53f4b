"""Shared pieces of the integration tests: fixtures for the fake Plex and Overseerr, the
webhook receiver and the SMTP server, a daemon started from a JSON configuration (JSON is
YAML, and lists of maps such as `webhooks` need it), and metric reading."""

from __future__ import annotations

import json
import os
import re
import secrets
import threading

import pytest

from fake_overseerr import FakeOverseerr
from fake_plex import FakePlex
from harness import Daemon, Harness, http_get, wait_for
from smtp_server import SMTPServer
from webhook_receiver import WebhookReceiver

PLEX_TOKEN = "plexTOKEN-" + secrets.token_hex(12)
OVERSEERR_KEY = "ovrKEY-" + secrets.token_hex(12)
WEBHOOK_SECRET = "whsec-" + secrets.token_hex(16)
SMTP_USER = "medianest"
SMTP_PASSWORD = "smtpPASS-" + secrets.token_hex(12)
REMOTE_ROOT = "/data/youtube"

# Retries quick enough for a test, many enough to outlast an outage.
PATIENT_QUEUES = {
    "default": {"concurrency": 4, "max_attempts": 20, "backoff": {"initial": "200ms", "max": "1s"}, "timeout": "60s"},
}


def _track(request, server) -> None:
    request.node.medianest_servers = getattr(request.node, "medianest_servers", []) + [server]


def library_root(h: Harness) -> str:
    return os.path.realpath(h.library)


@pytest.fixture
def plex(request, h: Harness) -> FakePlex:
    """A fake Plex with a `Movies` section elsewhere and a `YouTube` section whose folder
    /data/youtube is the test's library."""
    server = FakePlex(PLEX_TOKEN, sections=[
        {"key": "1", "title": "Movies", "type": "movie", "locations": ["/data/movies"]},
        {"key": "7", "title": "YouTube", "type": "movie", "locations": [REMOTE_ROOT]},
    ], disk={REMOTE_ROOT: library_root(h)}).start()
    _track(request, server)
    yield server
    server.stop()


@pytest.fixture
def overseerr(request) -> FakeOverseerr:
    server = FakeOverseerr(OVERSEERR_KEY).start()
    _track(request, server)
    yield server
    server.stop()


@pytest.fixture
def receiver(request) -> WebhookReceiver:
    server = WebhookReceiver(WEBHOOK_SECRET).start()
    _track(request, server)
    yield server
    server.stop()


@pytest.fixture
def smtp(request, tmp_path) -> SMTPServer:
    server = SMTPServer(tmp_path, SMTP_USER, SMTP_PASSWORD).start()
    _track(request, server)
    yield server
    server.stop()


def plex_config(plex: FakePlex, h: Harness, **extra) -> dict:
    return {"url": plex.url, "token": PLEX_TOKEN, "path_map": {library_root(h): REMOTE_ROOT}, **extra}


def json_daemon(h: Harness, name: str | None = None, start: bool = True, **overrides) -> Daemon:
    """Like h.daemon(), with the configuration written as JSON."""
    name = name or f"d{len(h.daemons) + 1}"
    settings = h.config(name, **overrides)
    h.settings[name] = settings
    path = h.write_config(name, text=json.dumps(settings, indent=1) + "\n")
    d = Daemon(name, path, h.workdir)
    d.settings = settings
    h.daemons.append(d)
    if start:
        d.start()
    return d


def metrics(h: Harness, d: Daemon) -> str:
    status, body = http_get(h.metrics_url(d) + "/metrics")
    assert status == 200, body
    return body


def metric(h: Harness, d: Daemon, name: str, **labels: str) -> float | None:
    """The value of one sample, or None when absent."""
    want = {k: v for k, v in labels.items()}
    for line in metrics(h, d).splitlines():
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if all(found.get(k) == v for k, v in want.items()):
            return float(m.group(4))
    return None


def all_log_text(h: Harness) -> str:
    """Everything every daemon of the test wrote, stdout and stderr."""
    parts = []
    for d in h.daemons:
        for out, err in d.runs:
            for p in (out, err):
                if p.exists():
                    parts.append(p.read_text(errors="replace"))
    return "\n".join(parts)


def wait_job(h: Harness, job_id: str, state: str | tuple[str, ...], timeout: float = 30) -> dict:
    return h.wait_state(job_id, state, timeout=timeout)


def write_media(h: Harness, relative: str, size: int = 2048) -> str:
    path = os.path.join(library_root(h), relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(os.urandom(size))
    return path


PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


def wait_pg(h: Harness, sql: str, params=None, timeout: float = 15, what: str = "rows"):
    return wait_for(lambda: h.pg(sql, params), timeout, what, interval=0.2)


class UserMessages:
    """Messages published on P:user:<user> (or on every P:user:* when no user is named), collected
    on a thread; each keeps the channel it came on as `channel`."""

    def __init__(self, h: Harness, user: str | None = None):
        self.pubsub = h.r.pubsub()
        if user is None:
            self.pubsub.psubscribe(h.key("user", "*"))
        else:
            self.pubsub.subscribe(h.key("user", user))
        self.messages: list[dict] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            m = self.pubsub.get_message(timeout=0.2)
            if m and m["type"] in ("message", "pmessage"):
                self.messages.append({"channel": m["channel"], **json.loads(m["data"])})

    def notifications(self) -> list[dict]:
        return [m for m in list(self.messages) if m.get("event") == "notification"]

    def close(self):
        self.stop.set()
        self.thread.join(2)
        self.pubsub.close()
