"""Helpers of the operation tests: a control-socket client, a NOTIFY_SOCKET receiver, a
Prometheus server of the test's own, and reading the daemons' logs."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

from harness import REPO, Daemon, Harness, _track, free_port, http_get, wait_for


# ---------------------------------------------------------------- control socket


class ControlClient:
    """One connection to a daemon's control socket: JSON lines each way."""

    def __init__(self, path: str | Path, timeout: float = 15):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.buffer = b""

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_line(self) -> bytes:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"the daemon closed the connection (buffer: {self.buffer[:200]!r})")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line

    def read_answer(self) -> dict:
        line = self.read_line()
        answer = json.loads(line)
        assert isinstance(answer, dict), f"an answer is a JSON object, got {line[:200]!r}"
        assert isinstance(answer.get("ok"), bool), f"an answer has ok: {answer}"
        if not answer["ok"]:
            assert isinstance(answer.get("error"), str) and answer["error"], f"a refusal says why: {answer}"
        return answer

    def request(self, cmd: str, **fields: Any) -> dict:
        self.send_raw((json.dumps({"cmd": cmd, **fields}) + "\n").encode())
        return self.read_answer()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "ControlClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def control(daemon: Daemon, cmd: str, **fields: Any) -> dict:
    """One request on a fresh connection."""
    with ControlClient(daemon.settings["control"]["socket"]) as c:
        return c.request(cmd, **fields)


# A client that runs as another user: prints the daemon's first line, or what went wrong.
PEER_CLIENT = r"""
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print(json.dumps({"connect_error": e.strerror})); sys.exit(0)
try:
    s.sendall(b'{"cmd":"status"}\n')
except OSError:
    pass
data = b""
try:
    while b"\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
except OSError as e:
    print(json.dumps({"recv_error": e.strerror})); sys.exit(0)
print(data.split(b"\n")[0].decode() if data else json.dumps({"closed": True}))
"""


def run_as(user: str, args: list[str], group: str | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    cmd = ["runuser", "-u", user]
    if group:
        cmd += ["-g", group]
    return subprocess.run(cmd + ["--", *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, cwd="/")


# ---------------------------------------------------------------- sd_notify


class NotifyReceiver:
    """A NOTIFY_SOCKET: a Unix datagram socket collecting (monotonic time, message) pairs."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="mn-notify-", dir="/tmp"))
        self.path = self.dir / "notify.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self.lock = threading.Lock()
        self.stopped = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.messages.append((time.monotonic(), data.decode("utf-8", "replace")))

    def snapshot(self) -> list[tuple[float, str]]:
        with self.lock:
            return list(self.messages)

    def times_of(self, assignment: str) -> list[float]:
        """When messages carrying `assignment` (a line such as READY=1) arrived."""
        return [t for t, m in self.snapshot() if assignment in m.split("\n")]

    def first(self, assignment: str) -> float | None:
        times = self.times_of(assignment)
        return times[0] if times else None

    def close(self) -> None:
        self.stopped = True
        self.sock.close()
        self.thread.join(2)
        shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------- Prometheus


class PrometheusServer:
    """Debian's prometheus, scraping the given targets every second, with the shipped alert rules."""

    def __init__(self, workdir: Path, targets: list[str], rules: list[Path] | None = None):
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.config = self.dir / "prometheus.yml"
        rule_files = "".join(f"  - {json.dumps(str(p))}\n" for p in (rules or []))
        self.config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            + (f"rule_files:\n{rule_files}" if rules else "")
            + "scrape_configs:\n  - job_name: medianest-worker\n    static_configs:\n"
            + f"      - targets: {json.dumps(targets)}\n")
        self.log = self.dir / "prometheus.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "PrometheusServer":
        binary = shutil.which("prometheus")
        assert binary, "prometheus is not installed (scripts/setup installs Debian's package)"
        with open(self.log, "wb") as log:
            self.proc = _track(subprocess.Popen(
                [binary, f"--config.file={self.config}", f"--storage.tsdb.path={self.dir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited ({self.proc.returncode}):\n{self.log_tail()}")
            return http_get(self.url + "/-/ready")[0] == 200

        wait_for(ready, 60, "prometheus to be ready", interval=0.2)
        return self

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        status, body = http_get(f"{self.url}/api/v1/{path}" + (f"?{query}" if query else ""), timeout=5)
        assert status == 200, f"prometheus API {path}: {status} {body[:300]}"
        answer = json.loads(body)
        assert answer["status"] == "success", answer
        return answer["data"]

    def query(self, expr: str) -> list[dict]:
        return self.api("query", query=expr)["result"]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return "(no log)"


# ---------------------------------------------------------------- logs and state


def log_lines(h: Harness, msg: str) -> list[dict]:
    """Every line with this `msg` logged by any run of any daemon of the harness."""
    out = []
    for d in h.daemons:
        for run in range(len(d.runs)):
            out.extend(line for line in d.lines(run) if line.get("msg") == msg)
    return out


def leader_daemon(h: Harness) -> Daemon | None:
    """The daemon holding P:leader (by the pid in its heartbeat)."""
    consumer = h.r.get(h.key("leader"))
    if not consumer:
        return None
    pid = h.r.hget(h.key("worker", consumer), "pid")
    for d in h.daemons:
        if d.alive() and str(d.pid) == pid:
            return d
    return None


def ctl(h: Harness, daemon: Daemon | None, *args: str, user: str | None = None,
        timeout: float = 30) -> subprocess.CompletedProcess:
    """`medianest-worker ctl ARGS --socket <daemon's socket>` (or --config of the daemon)."""
    from harness import daemon_binary, daemon_env
    cmd = [str(daemon_binary()), "ctl", *args]
    if daemon is not None:
        cmd += ["--socket", daemon.settings["control"]["socket"]]
    if user:
        cmd = ["runuser", "-u", user, "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=daemon_env(),
                          stdin=subprocess.DEVNULL, cwd="/")


def repo_file(*parts: str) -> Path:
    return REPO.joinpath(*parts)


def env_without(*names: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in names}
