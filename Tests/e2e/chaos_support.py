"""Helpers of the record-durability tests: what the `jobs` table holds for a set of ids
(missing, duplicated, in the wrong state), waiting for it with a report that names them,
raw-bytes stream entries, and a small timeline of disruptions."""

from __future__ import annotations

import time

import redis

from harness import RETRYABLE, Harness, wait_for


# ---------------------------------------------------------------------------- the jobs table


class RowReport:
    """What PostgreSQL's `jobs` table says about `ids`, counted row by row (not through the
    harness's dict, which would hide a second row of the same id)."""

    def __init__(self, ids: list[str], rows: list[tuple[str, int, list[str]]], state: str):
        self.ids = ids
        self.state = state
        by_id = {row_id: (count, states) for row_id, count, states in rows}
        self.missing = [i for i in ids if i not in by_id]
        self.duplicated = {i: by_id[i][1] for i in ids if i in by_id and by_id[i][0] > 1}
        self.wrong_state = {i: by_id[i][1][0] for i in ids
                            if i in by_id and by_id[i][0] == 1 and by_id[i][1][0] != state}
        self.good = len(ids) - len(self.missing) - len(self.duplicated) - len(self.wrong_state)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.duplicated or self.wrong_state)

    def describe(self, limit: int = 8) -> str:
        parts = [f"{self.good} of {len(self.ids)} jobs have exactly one jobs row in state {self.state}"]
        if self.missing:
            parts.append(f"{len(self.missing)} without a row, e.g. {self.missing[:limit]}")
        if self.wrong_state:
            summary: dict[str, int] = {}
            for s in self.wrong_state.values():
                summary[s] = summary.get(s, 0) + 1
            parts.append(f"{len(self.wrong_state)} in another state {summary}, "
                         f"e.g. {dict(list(self.wrong_state.items())[:limit])}")
        if self.duplicated:
            parts.append(f"{len(self.duplicated)} with more than one row, "
                         f"e.g. {dict(list(self.duplicated.items())[:limit])}")
        return "; ".join(parts)


def row_report(h: Harness, ids: list[str], state: str = "completed") -> RowReport:
    rows = h.pg("SELECT id, count(*)::int, array_agg(state ORDER BY updated_at) FROM jobs "
                "WHERE id = ANY(%s) GROUP BY id", (ids,))
    return RowReport(ids, rows, state)


def wait_rows(h: Harness, ids: list[str], state: str = "completed", timeout: float = 30,
              what: str = "") -> float:
    """Waits until every id of `ids` has exactly one `jobs` row, in `state`; returns the
    seconds it took. The failure names the ids missing, duplicated or in another state."""
    t0 = time.monotonic()
    last: list[RowReport] = []

    def check() -> bool:
        report = row_report(h, ids, state)
        last[:] = [report]
        return report.ok

    try:
        wait_for(check, timeout, f"{len(ids)} jobs rows to be {state}{' (' + what + ')' if what else ''}",
                 interval=0.25)
    except AssertionError as e:
        try:
            detail = row_report(h, ids, state).describe()
        except RETRYABLE as pg_error:
            detail = (last[0].describe() if last else "no report") + f" (PostgreSQL now: {pg_error!r})"
        raise AssertionError(f"{e}: {detail}") from None
    return time.monotonic() - t0


def completed_twice(h: Harness, ids: list[str]) -> dict[str, int]:
    """Ids of `ids` with more than one job:completed event in P:events:log."""
    counts = h.event_counts("job:completed")
    return {i: counts[i] for i in ids if counts.get(i, 0) > 1}


# ---------------------------------------------------------------------------- raw entries


def bytes_client(h: Harness) -> redis.Redis:
    """A redis-py client that sends and returns bytes as they are (the harness's decodes)."""
    return redis.Redis.from_url(h.redis_url, decode_responses=False, socket_timeout=10, socket_connect_timeout=5)


def xadd_bytes(client: redis.Redis, key: str, fields: dict[str, bytes | str]) -> str:
    """XADD key * field value... with values sent byte for byte; returns the entry id."""
    entry = client.xadd(key, fields)
    return entry.decode() if isinstance(entry, bytes) else entry


def enqueue_retrying(h: Harness, queue: str, envelopes: list[dict], timeout: float = 20) -> list[str]:
    """h.enqueue_many, retried while Redis is away (the same ids again: the daemon drops
    the entries of an id it already has, so a repeated batch changes nothing)."""
    return wait_for(lambda: h.enqueue_many(queue, envelopes), timeout, f"enqueueing {len(envelopes)} jobs",
                    interval=0.2, retry_on=(redis.ConnectionError, redis.TimeoutError))


# ---------------------------------------------------------------------------- a timeline


class Timeline:
    """A log of what a test did when (seconds since its start), printed with the results so a
    failure can be read against the disruptions."""

    def __init__(self):
        self.t0 = time.monotonic()
        self.marks: list[tuple[float, str]] = []

    def now(self) -> float:
        return time.monotonic() - self.t0

    def mark(self, what: str) -> None:
        self.marks.append((self.now(), what))
        print(f"[{self.now():7.2f}s] {what}", flush=True)

    def sleep_until(self, at: float) -> None:
        delay = at - self.now()
        if delay > 0:
            time.sleep(delay)

    def text(self) -> str:
        return "\n".join(f"[{t:7.2f}s] {w}" for t, w in self.marks)


# ---------------------------------------------------------------------------- pages byte for byte


class RawPageServer:
    """A loopback HTTP server of pages given as bytes, sent as they are (media_server escapes
    its titles; these tests need entities such as &#0; and &#xD800; to reach yt-dlp, which
    turns them into NUL and a lone surrogate in its JSON)."""

    def __init__(self):
        import http.server
        import threading as _threading

        pages: dict[str, bytes] = {}
        self.pages = pages

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                body = pages.get(self.path)
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = _threading.Thread(target=self.httpd.serve_forever, daemon=True, name="raw-pages")

    def start(self) -> "RawPageServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def add(self, path: str, body: bytes) -> str:
        self.pages["/" + path.lstrip("/")] = body
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"
