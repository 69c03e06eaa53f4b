"""Building blocks of the end-to-end tests: the daemon as a subprocess, a per-test
Redis prefix and PostgreSQL database, private Redis and PostgreSQL servers, and polling.

Everything here talks to Redis the way the MediaNest API does (plain commands through
redis-py) and reads PostgreSQL with psycopg 3.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import datetime as dt
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterable

import psycopg
import redis

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT = float(os.environ.get("MEDIANEST_E2E_READY_TIMEOUT", "30"))

# Variables that would override the configuration the tests write.
DAEMON_ENV_DROP = (
    "MEDIANEST_REDIS_URL",
    "MEDIANEST_DATABASE_URL",
    "MEDIANEST_CONFIG",
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "LISTEN_FDS",
    "LISTEN_PID",
)

# Every process the tests start, so that none outlives an interrupted run.
_CHILDREN: set[subprocess.Popen] = set()


@atexit.register
def _kill_children() -> None:
    for proc in list(_CHILDREN):
        if proc.poll() is None:
            with contextlib.suppress(Exception):
                proc.kill()
                proc.wait(5)


def _track(proc: subprocess.Popen) -> subprocess.Popen:
    for old in [p for p in _CHILDREN if p.poll() is not None]:
        _CHILDREN.discard(old)
    _CHILDREN.add(proc)
    return proc


RETRYABLE = (redis.ConnectionError, redis.TimeoutError, psycopg.OperationalError, OSError)


# ---------------------------------------------------------------------------- utilities


def daemon_binary() -> Path:
    return Path(os.environ.get("MEDIANEST_BIN", REPO / ".build" / "debug" / "medianest-worker"))


def daemon_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in DAEMON_ENV_DROP}
    if extra:
        env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_for(predicate: Callable[[], Any], timeout: float, what: str = "condition",
             interval: float = 0.05, retry_on: tuple = RETRYABLE) -> Any:
    """Poll `predicate` until it returns something truthy, and return that.

    Raises AssertionError naming `what` (and the last value seen) after `timeout` seconds.
    Exceptions in `retry_on` (a server being restarted, say) count as "not yet".
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    last_error: BaseException | None = None
    while True:
        try:
            last = predicate()
            last_error = None
            if last:
                return last
        except retry_on as e:  # noqa: PERF203 - polling
            last_error = e
        if time.monotonic() >= deadline:
            detail = f"last error: {last_error!r}" if last_error else f"last value: {_short(last)}"
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what} ({detail})")
        time.sleep(interval)


def _short(value: Any, limit: int = 600) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def rfc3339(when: dt.datetime) -> str:
    """UTC, milliseconds, `Z`: the form the contract uses for timestamps."""
    return when.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert value.tzinfo is not None, f"timestamp without a time zone: {text!r}"
    return value


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def new_id(tag: str = "job") -> str:
    return f"{tag}-{secrets.token_hex(6)}"


def with_database(url: str, dbname: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + dbname))


def http_get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def to_yaml(value: Any, indent: int = 0) -> str:
    """A small YAML writer for the test configuration: block mappings, flow lists,
    double-quoted strings (JSON strings are valid YAML)."""
    pad = "  " * indent
    if isinstance(value, dict):
        if not value:
            return "{}"
        lines = []
        for key, item in value.items():
            k = key if _plain_key(key) else json.dumps(key)
            if isinstance(item, dict) and item:
                lines.append(f"{pad}{k}:\n{to_yaml(item, indent + 1)}")
            else:
                lines.append(f"{pad}{k}: {to_yaml(item, indent + 1)}")
        return "\n".join(lines)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(to_yaml(v, indent + 1) for v in value) + "]"
    raise TypeError(f"cannot write {type(value)} as YAML")


def _plain_key(key: str) -> bool:
    return bool(key) and all(c.isalnum() or c in "_-." for c in key)


def deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _is_root() -> bool:
    return os.geteuid() == 0


def pg_bindir() -> Path:
    env = os.environ.get("MEDIANEST_PG_BINDIR")
    if env:
        return Path(env)
    preferred = Path("/usr/lib/postgresql/15/bin")
    if (preferred / "initdb").exists():
        return preferred
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
                        reverse=True)
    if candidates:
        return candidates[0].parent
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found: run scripts/setup")


# ---------------------------------------------------------------------------- the daemon


class Daemon:
    """One `medianest-worker run` process. Its stdout (JSON lines) and stderr go to files
    under the test's folder, one pair per start."""

    def __init__(self, name: str, config: Path, logdir: Path, env: dict[str, str] | None = None):
        self.name = name
        self.config = config
        self.logdir = logdir
        self.extra_env = env or {}
        self.proc: subprocess.Popen | None = None
        self.settings: dict = {}
        self.runs: list[tuple[Path, Path]] = []
        self.returncodes: list[int | None] = []

    # -- process

    def start(self, ready: bool = True, timeout: float = READY_TIMEOUT) -> "Daemon":
        assert self.proc is None or self.proc.poll() is not None, f"daemon {self.name} already runs"
        n = len(self.runs) + 1
        out = self.logdir / f"{self.name}.{n}.stdout.log"
        err = self.logdir / f"{self.name}.{n}.stderr.log"
        self.runs.append((out, err))
        with open(out, "wb") as fo, open(err, "wb") as fe:
            self.proc = _track(subprocess.Popen(
                [str(daemon_binary()), "run", "--config", str(self.config)],
                stdin=subprocess.DEVNULL, stdout=fo, stderr=fe,
                env=daemon_env(self.extra_env), start_new_session=True,
            ))
        if ready:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        def ready() -> bool:
            if any(line.get("msg") == "ready" for line in self.lines()):
                return True
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(
                    f"daemon {self.name} exited with status {self.proc.returncode} before it was ready\n"
                    + self.tail())
            return False

        try:
            wait_for(ready, timeout, f"daemon {self.name} to log \"ready\"", interval=0.05)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.tail()}") from None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int | None:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.alive():
            self.proc.kill()
            self.proc.wait(10)
        self.returncodes.append(self.proc.returncode if self.proc else None)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM; SIGKILL when it has not exited after `timeout` seconds. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.returncodes.append(self.proc.returncode)
        return self.proc.returncode

    def restart(self, ready: bool = True) -> "Daemon":
        self.stop()
        return self.start(ready=ready)

    # -- logs

    def lines(self, run: int = -1) -> list[dict]:
        """The JSON objects the run logged on stdout (the last run by default)."""
        if not self.runs:
            return []
        out, _ = self.runs[run]
        result = []
        try:
            with open(out, "r", encoding="utf-8", errors="replace") as f:
                for raw in f:
                    raw = raw.strip()
                    if not raw:
                        continue
                    try:
                        obj = json.loads(raw)
                    except ValueError:
                        continue
                    if isinstance(obj, dict):
                        result.append(obj)
        except FileNotFoundError:
            pass
        return result

    def raw_lines(self, run: int = -1) -> list[str]:
        if not self.runs:
            return []
        out, _ = self.runs[run]
        return out.read_text(encoding="utf-8", errors="replace").splitlines()

    def tail(self, n: int = 40) -> str:
        parts = []
        for i, (out, err) in enumerate(self.runs, 1):
            for label, path in (("stdout", out), ("stderr", err)):
                try:
                    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
                except FileNotFoundError:
                    continue
                if text:
                    parts.append(f"--- daemon {self.name} run {i} {label} ({path}), last {min(n, len(text))} "
                                 f"of {len(text)} lines ---")
                    parts.extend(text[-n:])
        rc = self.proc.returncode if self.proc is not None else None
        parts.append(f"--- daemon {self.name}: config {self.config}, exit status {rc} ---")
        return "\n".join(parts)


# ---------------------------------------------------------------------------- per-test world


class Harness:
    """A test's world: a random Redis key prefix, a fresh PostgreSQL database, folders,
    configuration files and daemons. `cleanup()` stops the daemons and removes it all."""

    def __init__(self, redis_url: str, admin_database_url: str, workdir: Path):
        self.redis_url = redis_url
        self.admin_database_url = admin_database_url
        self.workdir = workdir
        self.prefix = "e2e" + secrets.token_hex(5)
        self.r = redis.Redis.from_url(redis_url, decode_responses=True,
                                      socket_timeout=10, socket_connect_timeout=5)
        self.dbname = "t_" + secrets.token_hex(6)
        self.database_url = with_database(admin_database_url, self.dbname)
        self.library = workdir / "library"
        self.temp = workdir / "temp"
        self.library.mkdir(parents=True, exist_ok=True)
        self.temp.mkdir(parents=True, exist_ok=True)
        # Unix socket paths are short (108 bytes): keep them out of pytest's deep folders.
        self.sockdir = Path(tempfile.mkdtemp(prefix="mn-e2e-", dir="/tmp"))
        self.daemons: list[Daemon] = []
        self.base_overrides: dict = {}
        self.settings: dict[str, dict] = {}
        with psycopg.connect(admin_database_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{self.dbname}"')

    # -- keys

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix,) + parts)

    # -- configuration

    def config(self, name: str = "worker", **overrides: Any) -> dict:
        base = {
            "redis": {"url": self.redis_url, "prefix": self.prefix},
            "postgres": {"url": self.database_url},
            "paths": {"library": str(self.library), "temp": str(self.temp)},
            "control": {"socket": str(self.sockdir / f"{name}.sock"), "mode": "0600"},
            "metrics": {"listen": f"127.0.0.1:{free_port()}"},
            "shutdown_timeout": "3s",
            "lease": "2s",
            "logging": {"level": "debug", "format": "json"},
            "queues": {
                "default": {"concurrency": 4, "max_attempts": 3,
                            "backoff": {"initial": "200ms", "max": "1s"}, "timeout": "60s"},
                "bulk": {"concurrency": 16, "max_attempts": 3,
                         "backoff": {"initial": "200ms", "max": "1s"}, "timeout": "60s"},
                "solo": {"concurrency": 1, "max_attempts": 3,
                         "backoff": {"initial": "200ms", "max": "1s"}, "timeout": "60s"},
            },
            "youtube": {"allowed_hosts": ["127.0.0.1"]},
            "schedules": {},
        }
        return deep_merge(deep_merge(base, self.base_overrides), overrides)

    def write_config(self, name: str = "worker", text: str | None = None, **overrides: Any) -> Path:
        """Write `<name>.jobs.yml`: `text` as it is, or the test configuration with `overrides`."""
        path = self.workdir / f"{name}.jobs.yml"
        if text is None:
            settings = self.config(name, **overrides)
            self.settings[name] = settings
            text = to_yaml(settings) + "\n"
        path.write_text(text)
        return path

    def metrics_url(self, daemon: "Daemon") -> str:
        return "http://" + daemon.settings["metrics"]["listen"]

    # -- daemons

    def daemon(self, name: str | None = None, start: bool = True, ready: bool = True,
               env: dict[str, str] | None = None, **overrides: Any) -> Daemon:
        name = name or f"d{len(self.daemons) + 1}"
        d = Daemon(name, self.write_config(name, **overrides), self.workdir, env)
        d.settings = self.settings[name]
        self.daemons.append(d)
        if start:
            d.start(ready=ready)
        return d

    def cli(self, *args: str, config: Path | None = None, timeout: float = 30,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run `medianest-worker ARGS... --config FILE` and capture its output."""
        config = config or self.write_config("cli")
        cmd = [str(daemon_binary()), *args, "--config", str(config)]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env=daemon_env(env), stdin=subprocess.DEVNULL)

    # -- enqueue (as the API does: one XADD)

    @staticmethod
    def envelope(type: str = "noop", payload: dict | None = None, id: str | None = None,
                 **fields: Any) -> dict:
        env = {"id": id or new_id(), "type": type, "payload": {} if payload is None else payload}
        env.update({k: v for k, v in fields.items() if v is not None})
        return env

    def enqueue(self, queue: str = "default", type: str = "noop", payload: dict | None = None,
                id: str | None = None, **fields: Any) -> str:
        env = self.envelope(type, payload, id, **fields)
        self.xadd_job(queue, json.dumps(env, separators=(",", ":")))
        return env["id"]

    def enqueue_many(self, queue: str, envelopes: Iterable[dict]) -> list[str]:
        ids = []
        pipe = self.r.pipeline(transaction=False)
        for env in envelopes:
            ids.append(env["id"])
            pipe.xadd(self.key("queue", queue), {"job": json.dumps(env, separators=(",", ":"))})
        pipe.execute()
        return ids

    def xadd_job(self, queue: str, job_text: str) -> str:
        """XADD P:queue:<queue> * job <text>, whatever the text is."""
        return wait_for(lambda: self.r.xadd(self.key("queue", queue), {"job": job_text}),
                        10, f"XADD on queue {queue}", interval=0.2, retry_on=(redis.ConnectionError,))

    def control(self, cmd: str, **fields: str) -> str:
        """XADD P:control * cmd <cmd> [field value...]"""
        return self.r.xadd(self.key("control"), {"cmd": cmd, **fields})

    # -- job state

    def job(self, job_id: str) -> dict:
        return self.r.hgetall(self.key("job", job_id))

    def jobs(self, ids: list[str]) -> list[dict]:
        pipe = self.r.pipeline(transaction=False)
        for job_id in ids:
            pipe.hgetall(self.key("job", job_id))
        return pipe.execute()

    def states(self, ids: list[str]) -> dict[str, str | None]:
        pipe = self.r.pipeline(transaction=False)
        for job_id in ids:
            pipe.hget(self.key("job", job_id), "state")
        return dict(zip(ids, pipe.execute()))

    def wait_state(self, job_id: str, state: str | tuple[str, ...], timeout: float = 15) -> dict:
        wanted = (state,) if isinstance(state, str) else state

        def check():
            h = self.job(job_id)
            return h if h.get("state") in wanted else None

        try:
            return wait_for(check, timeout, f"job {job_id} to be {'/'.join(wanted)}")
        except AssertionError as e:
            raise AssertionError(f"{e}; hash now: {self.job(job_id)}") from None

    def wait_states(self, ids: list[str], state: str, timeout: float = 30) -> None:
        try:
            wait_for(lambda: all(s == state for s in self.states(ids).values()), timeout,
                     f"{len(ids)} jobs to be {state}", interval=0.2)
        except AssertionError as e:
            states = self.states(ids)
            wrong = {i: s for i, s in states.items() if s != state}
            summary = collections.Counter(wrong.values())
            raise AssertionError(f"{e}; {len(wrong)} not {state} ({dict(summary)}), "
                                 f"e.g. {dict(list(wrong.items())[:5])}") from None

    def assert_states(self, ids: list[str], state: str) -> None:
        states = self.states(ids)
        wrong = {i: s for i, s in states.items() if s != state}
        assert not wrong, f"{len(wrong)} of {len(ids)} jobs not {state}: {dict(list(wrong.items())[:10])}"

    # -- events

    def event_log(self) -> list[tuple[str, dict]]:
        """Every event in P:events:log, oldest first, as (stream id, event object)."""
        out: list[tuple[str, dict]] = []
        start = "-"
        key = self.key("events", "log")
        while True:
            batch = self.r.xrange(key, min=start, max="+", count=2000)
            if out and batch and batch[0][0] == out[-1][0]:
                batch = batch[1:]
            if not batch:
                break
            for entry_id, fields in batch:
                out.append((entry_id, json.loads(fields["event"])))
            start = batch[-1][0]
            if len(batch) < 1999:
                break
        return out

    def events(self, job_id: str | None = None, event: str | None = None) -> list[dict]:
        return [e for _, e in self.event_log()
                if (job_id is None or e.get("jobId") == job_id) and (event is None or e.get("event") == event)]

    def event_counts(self, event: str) -> collections.Counter:
        return collections.Counter(e.get("jobId") for _, e in self.event_log() if e.get("event") == event)

    def assert_completed_once(self, ids: list[str]) -> None:
        counts = self.event_counts("job:completed")
        wrong = {i: counts.get(i, 0) for i in ids if counts.get(i, 0) != 1}
        assert not wrong, f"{len(wrong)} jobs without exactly one job:completed event: {dict(list(wrong.items())[:10])}"

    # -- streams

    def group_info(self, queue: str) -> dict | None:
        try:
            groups = self.r.xinfo_groups(self.key("queue", queue))
        except redis.ResponseError:
            return None
        for g in groups:
            if g.get("name") == "workers":
                return g
        return None

    def drained(self, queue: str) -> bool:
        """Every entry of the queue was delivered to the group `workers` and acknowledged."""
        g = self.group_info(queue)
        return g is not None and g.get("pending") == 0 and g.get("lag") == 0

    def wait_drained(self, queue: str, timeout: float = 15) -> None:
        wait_for(lambda: self.drained(queue), timeout,
                 f"queue {queue} to be read and acknowledged (group now {self.group_info(queue)})")

    # -- PostgreSQL

    def pg(self, sql: str, params: Any = None) -> list[tuple]:
        """Rows of a query on the test's database; [] while the daemon has not created the table."""
        try:
            with psycopg.connect(self.database_url, autocommit=True, connect_timeout=5) as conn:
                return conn.execute(sql, params).fetchall()
        except psycopg.errors.UndefinedTable:
            return []

    def pg_jobs(self, ids: list[str]) -> dict[str, dict]:
        rows = self.pg(
            "SELECT id, queue, type, state, attempt, max_attempts, error, worker, user_id "
            "FROM jobs WHERE id = ANY(%s)", (ids,))
        cols = ("id", "queue", "type", "state", "attempt", "max_attempts", "error", "worker", "user_id")
        return {row[0]: dict(zip(cols, row)) for row in rows}

    def wait_pg_states(self, ids: list[str], state: str, timeout: float = 30) -> dict[str, dict]:
        def check():
            rows = self.pg_jobs(ids)
            ok = sum(1 for i in ids if rows.get(i, {}).get("state") == state)
            return rows if ok == len(ids) else None

        try:
            return wait_for(check, timeout, f"{len(ids)} PostgreSQL rows to be {state}", interval=0.2)
        except AssertionError as e:
            rows = self.pg_jobs(ids)
            wrong = {i: rows.get(i, {}).get("state") for i in ids if rows.get(i, {}).get("state") != state}
            raise AssertionError(f"{e}; {len(wrong)} not {state}, e.g. {dict(list(wrong.items())[:10])}") from None

    # -- teardown

    def stop_daemons(self) -> None:
        for d in self.daemons:
            with contextlib.suppress(Exception):
                d.stop(timeout=15)

    def cleanup(self) -> None:
        self.stop_daemons()
        with contextlib.suppress(Exception):
            cursor = 0
            while True:
                cursor, keys = self.r.scan(cursor, match=self.prefix + ":*", count=1000)
                if keys:
                    self.r.delete(*keys)
                if cursor == 0:
                    break
        with contextlib.suppress(Exception):
            self.r.close()
        with contextlib.suppress(Exception):
            with psycopg.connect(self.admin_database_url, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')
        shutil.rmtree(self.sockdir, ignore_errors=True)


# ---------------------------------------------------------------------------- private servers


class PrivateRedis:
    """A redis-server of the test's own, with an append-only file fsynced on every write,
    so that a stop and start loses nothing that was acknowledged."""

    def __init__(self, workdir: Path):
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.logfile = self.dir / "redis.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15) -> "PrivateRedis":
        self.proc = _track(subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port),
             "--dir", str(self.dir), "--save", "", "--appendonly", "yes", "--appendfsync", "always",
             "--logfile", str(self.logfile), "--daemonize", "no"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True))
        client = redis.Redis(port=self.port, socket_connect_timeout=1)

        def ping():
            if self.proc.poll() is not None:
                raise AssertionError(f"redis-server exited ({self.proc.returncode}):\n{self.log_tail()}")
            return client.ping()

        try:
            wait_for(ping, timeout, f"private redis on port {self.port}")
        finally:
            client.close()
        return self

    def stop(self, timeout: float = 15) -> None:
        """A clean shutdown (SIGTERM: the append-only file is flushed)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def restart(self, down: float = 1.0) -> None:
        self.stop()
        time.sleep(down)
        self.start()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return "(no log)"


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own on a free port: superuser `medianest`, trust
    authentication on 127.0.0.1, no Unix socket. As root its commands run as `postgres`."""

    def __init__(self):
        self.bindir = pg_bindir()
        # Not below pytest's folders: those may not be reachable for the postgres user.
        self.root = Path(tempfile.mkdtemp(prefix="mn-e2e-pg-", dir="/tmp"))
        self.data = self.root / "data"
        self.logfile = self.root / "postgres.log"
        self.port = free_port()
        self._initialised = False
        if _is_root():
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("PostgreSQL refuses to run as root and there is no 'postgres' user") from None
            os.chmod(self.root, 0o755)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)

    @property
    def url(self) -> str:
        return f"postgres://medianest@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = list(args)
        if _is_root():
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd="/",
                                stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}\n"
                               f"{self.log_tail()}")
        return result

    def start(self, timeout: float = 30) -> "PrivatePostgres":
        if not self._initialised:
            self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "medianest",
                      "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync")
            with open(self.data / "postgresql.conf", "a") as f:
                f.write("\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
                        "max_connections = 100\nfsync = off\nsynchronous_commit = off\n"
                        "full_page_writes = off\n")
            (self.data / "pg_hba.conf").write_text(
                "host all all 127.0.0.1/32 trust\n")
            self._initialised = True
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.logfile),
                  "-o", f"-p {self.port}", "-w", "-t", str(int(timeout)), "start", timeout=timeout + 10)

        def ready():
            with psycopg.connect(self.url, connect_timeout=2) as conn:
                return conn.execute("SELECT 1").fetchone()[0] == 1

        wait_for(ready, timeout, f"private postgres on port {self.port}", interval=0.1)
        return self

    def stop(self, timeout: float = 30) -> None:
        if self._initialised and self.running():
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                      "-t", str(int(timeout)), "stop", timeout=timeout + 10)

    def running(self) -> bool:
        if not self._initialised:
            return False
        cmd = [str(self.bindir / "pg_ctl"), "-D", str(self.data), "status"]
        if _is_root():
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, cwd="/", stdin=subprocess.DEVNULL).returncode == 0

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-n:])
        except (FileNotFoundError, PermissionError):
            return "(no log)"
