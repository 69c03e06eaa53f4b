"""The `jobs` table is a durable record: every job that finished in Redis gets exactly one
row saying so, whatever happens to the daemons and servers on the way (SIGKILLs, a Redis
restart, PostgreSQL away), and whatever bytes the entries carry (NUL, invalid UTF-8).

Each transition's record must survive the daemon that made it: a daemon killed with records
not yet in PostgreSQL must not take them with it, and another daemon (any daemon) brings them
to the table. One record PostgreSQL refuses (a NUL byte) must not hold back the others.
"""

from __future__ import annotations

import os
import random
import re
import signal
import threading
import time

import psycopg
import pytest

from chaos_support import (RawPageServer, Timeline, bytes_client, completed_twice, enqueue_retrying, row_report,
                           wait_rows, xadd_bytes)
from harness import Harness, PrivatePostgres, PrivateRedis, http_get, new_id, wait_for
from youtube_support import enqueue_download, media, media_root, media_server, row, yt_daemon  # noqa: F401 (fixtures)

CHAOS_QUEUE = {"concurrency": 8, "max_attempts": 10, "backoff": {"initial": "100ms", "max": "500ms"}}


def chaos_envelopes(h: Harness, rng: random.Random, n: int) -> list[dict]:
    """Mostly `sleep` of 10–50 ms, one in eight `noop`."""
    out = []
    for _ in range(n):
        if rng.random() < 0.125:
            out.append(h.envelope("noop", {}, id=new_id("noop")))
        else:
            out.append(h.envelope("sleep", {"seconds": round(rng.uniform(0.01, 0.05), 3)}, id=new_id("sleep")))
    return out


def completed_in_redis(h: Harness, ids: list[str]) -> int:
    return sum(1 for s in h.states(ids).values() if s == "completed")


# ---------------------------------------------------------------------------- 1. chaos


# The size CI runs; MEDIANEST_CHAOS="jobs,kills,postgres-down-seconds,feed-seconds" runs another
# (the closing figures: MEDIANEST_CHAOS=10000,20,15,45).
_CHAOS = os.environ.get("MEDIANEST_CHAOS", "3000,8,10,27").split(",")
CHAOS_JOBS, CHAOS_KILLS = int(_CHAOS[0]), int(_CHAOS[1])
CHAOS_PG_DOWN, CHAOS_FEED_SECONDS = float(_CHAOS[2]), float(_CHAOS[3])


@pytest.mark.timeout(240 if CHAOS_JOBS <= 3000 else 900)
def test_chaos_kills_a_redis_restart_and_a_postgres_outage_lose_no_record(private_redis: PrivateRedis,
                                                                          private_pg: PrivatePostgres,
                                                                          make_harness):
    """Three daemons drain 3,000 jobs while one of them is SIGKILLed 8 times, Redis restarts
    once and PostgreSQL is away for 10 s. Every job ends `completed` in Redis, once, and with
    exactly one `completed` row."""
    run_chaos(private_redis, private_pg, make_harness, kill=True)


def run_chaos(private_redis: PrivateRedis, private_pg: PrivatePostgres, make_harness, kill: bool) -> None:
    """The chaos scenario. With kill=False the victim is left alone (same timeline otherwise):
    the control run that shows the load, the Redis restart and the outage alone lose nothing."""
    h = make_harness(redis_url=private_redis.url, database_url=private_pg.url)
    seed = random.randrange(1 << 30)
    print(f"seed {seed}")
    steady_a = h.daemon("a", queues={"default": CHAOS_QUEUE})
    steady_b = h.daemon("b", queues={"default": CHAOS_QUEUE})
    victim = h.daemon("c", queues={"default": CHAOS_QUEUE})
    tl = Timeline()
    # The jobs arrive at a steady rate over the whole timeline (the three daemons could drain
    # 3,000 at once in a few seconds), so every disruption meets work in flight.
    feeder = Feeder(h, random.Random(seed), total=CHAOS_JOBS, seconds=CHAOS_FEED_SECONDS, tl=tl).start()
    ids = feeder.ids
    kills = 0

    def kill_victim(at: float, restart_ready: bool = True, pause: float = 0.5) -> None:
        nonlocal kills
        tl.sleep_until(at)
        assert victim.alive(), f"daemon c died on its own before kill {kills + 1}:\n{victim.tail()}"
        kills += 1
        if not kill:
            time.sleep(pause)
            tl.mark(f"(control run: no SIGKILL {kills})")
            return
        victim.kill()
        tl.mark(f"SIGKILL {kills} of daemon c (pid {victim.proc.pid}), {len(ids)} enqueued, "
                f"{completed_in_redis(h, list(ids))} completed in Redis")
        time.sleep(pause)
        victim.start(ready=restart_ready)
        tl.mark(f"daemon c started again{' and ready' if restart_ready else ' (not waiting for ready)'}")

    try:
        kill_victim(2.0)                               # 1
        kill_victim(4.5)                               # 2
        kill_victim(7.0)                               # 3

        # PostgreSQL away for CHAOS_PG_DOWN s; daemon c runs jobs for 6 s of it, then is killed
        # with every record of those 6 s still to be written.
        tl.sleep_until(8.5)
        private_pg.stop()
        pg_down = time.monotonic()
        tl.mark("PostgreSQL stopped")
        kill_victim(8.5 + 6.0, restart_ready=False)    # 4: it waits for PostgreSQL to migrate
        time.sleep(max(0.0, CHAOS_PG_DOWN - (time.monotonic() - pg_down)))
        private_pg.start()
        tl.mark(f"PostgreSQL started after {time.monotonic() - pg_down:.1f}s")
        if kill:
            victim.wait_ready()
            tl.mark("daemon c ready")

        kill_victim(tl.now() + 1.5)                    # 5

        tl.sleep_until(tl.now() + 1.0)
        private_redis.restart(down=1.0)
        wait_for(h.r.ping, 15, "the test's Redis connection after the restart")
        tl.mark("Redis restarted")
        # The rest spread over what is left of the feed, the last one with jobs still arriving.
        rest = CHAOS_KILLS - 5
        start, end = tl.now() + 1.5, max(tl.now() + 1.5 * rest, CHAOS_FEED_SECONDS - 1.0)
        for n in range(rest):                          # 6 …
            kill_victim(max(tl.now() + 1.0, start + (end - start) * n / max(rest - 1, 1)))
        last_disruption = time.monotonic()
        tl.mark("last disruption over")
    finally:
        feeder.join()
    tl.mark(f"feeder done: {len(ids)} enqueued")
    assert kills == CHAOS_KILLS and len(ids) == CHAOS_JOBS and len(set(ids)) == CHAOS_JOBS, (kills, len(ids), len(set(ids)))

    h.wait_states(ids, "completed", timeout=90)
    redis_done = time.monotonic() - last_disruption
    tl.mark("every job completed in Redis")
    for d in (steady_a, steady_b, victim):
        assert d.alive(), f"daemon {d.name} is up at the end:\n{d.tail()}"

    wait_rows(h, ids, "completed", timeout=45,
              what=f"after {kills if kill else 0} SIGKILLs, a Redis restart and a PostgreSQL outage; seed {seed}")
    rows_done = time.monotonic() - last_disruption
    tl.mark("every job has its completed row")
    print(f"after the last disruption: Redis completed in {redis_done:.1f}s, the jobs rows caught up in {rows_done:.1f}s")

    counts = h.event_counts("job:completed")
    twice = {i: counts[i] for i in ids if counts.get(i, 0) > 1}
    assert not twice, f"{len(twice)} jobs have more than one job:completed event: {dict(list(twice.items())[:8])}"
    never = [i for i in ids if counts.get(i, 0) == 0]
    assert not never, f"{len(never)} completed jobs have no job:completed event, e.g. {never[:8]}"




class Feeder:
    """Enqueues `total` chaos jobs in small batches spread over `seconds`, from a thread;
    retries through a Redis restart. `ids` grows as they go in."""

    def __init__(self, h: Harness, rng: random.Random, total: int, seconds: float, tl: Timeline, batch: int = 25):
        self.h, self.rng, self.total, self.seconds, self.tl, self.batch = h, rng, total, seconds, tl, batch
        self.ids: list[str] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="feeder", daemon=True)

    def start(self) -> "Feeder":
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            t0 = time.monotonic()
            batches = -(-self.total // self.batch)
            for n in range(batches):
                at = t0 + self.seconds * n / batches
                if (delay := at - time.monotonic()) > 0:
                    time.sleep(delay)
                size = min(self.batch, self.total - len(self.ids))
                self.ids.extend(enqueue_retrying(self.h, "default", chaos_envelopes(self.h, self.rng, size), timeout=30))
        except BaseException as e:  # noqa: BLE001 - reported by join()
            self.error = e

    def join(self) -> None:
        self.thread.join(self.seconds + 60)
        assert not self.thread.is_alive(), "the feeder thread did not finish"
        if self.error is not None:
            raise AssertionError(f"enqueueing failed: {self.error!r}") from self.error


# ---------------------------------------------------------------------------- 2. killed with all records pending


@pytest.mark.timeout(150)
def test_records_of_a_killed_daemon_reach_postgres_through_another_daemon(private_pg: PrivatePostgres,
                                                                         make_harness):
    """Daemon A finishes 500 jobs while PostgreSQL is down and is SIGKILLed before it is back.
    Daemon B, started afterwards and the only daemon up, brings all 500 rows to the table."""
    run_handover(private_pg, make_harness, kill=True)


def run_handover(private_pg: PrivatePostgres, make_harness, kill: bool) -> None:
    """With kill=False daemon A is left up (the control run: its own records catch up)."""
    h = make_harness(database_url=private_pg.url)
    a = h.daemon("a", queues={"default": {"concurrency": 16}})
    b = h.daemon("b", start=False, queues={"default": {"concurrency": 4}})
    warm = h.enqueue("default", "noop", {})
    wait_rows(h, [warm], "completed", timeout=15, what="a first job, with PostgreSQL up")

    private_pg.stop()
    try:
        ids = h.enqueue_many("default", (h.envelope("noop", {}) for _ in range(500)))
        h.wait_states(ids, "completed", timeout=40)
        assert a.alive(), f"daemon A stays up without PostgreSQL:\n{a.tail()}"
        if kill:
            a.kill()
            assert a.proc.returncode == -signal.SIGKILL
    finally:
        private_pg.start()
    if kill:
        # Nothing is up yet: whatever the table has now, daemon A wrote before PostgreSQL went away.
        early = row_report(h, ids, "completed")
        assert early.good == 0, f"the test needs A to have written no row of the 500: {early.describe()}"

    b.start()
    took = wait_rows(h, ids, "completed", timeout=30,
                     what="finished by daemon A while PostgreSQL was down; A SIGKILLed; only daemon B up")
    print(f"the 500 rows reached PostgreSQL {took:.1f}s after daemon B was ready")
    assert b.alive()
    twice = completed_twice(h, ids)
    assert not twice, f"jobs completed twice: {dict(list(twice.items())[:8])}"


# ---------------------------------------------------------------------------- 3. poison bytes


def pg_row(h: Harness, job_id: str) -> dict | None:
    rows = h.pg("SELECT id, state, error, payload::text, raw, user_id FROM jobs WHERE id = %s", (job_id,))
    assert len(rows) <= 1, f"{job_id}: {len(rows)} rows"
    return dict(zip(("id", "state", "error", "payload", "raw", "user_id"), rows[0])) if rows else None


def wait_pg_row(h: Harness, job_id: str, timeout: float, what: str) -> dict:
    try:
        return wait_for(lambda: pg_row(h, job_id), timeout, f"a jobs row for {what} ({job_id})", interval=0.2)
    except AssertionError as e:
        raise AssertionError(f"{e}; Redis has {h.job(job_id) or 'no hash'}") from None


NUL_SIX = "\\u0000"  # the six characters backslash, u, 0, 0, 0, 0


@pytest.mark.timeout(150)
def test_nul_bytes_and_invalid_utf8_hold_back_no_record_and_no_audit_row(h: Harness):
    """NUL bytes (raw and as JSON escapes) and invalid UTF-8 in job entries, in a payload, in an
    error, in a userId and in control commands: each gets its own row (NUL kept as the six
    characters \\u0000), and the 1,000 good jobs and a later control command get theirs on time."""
    d = h.daemon()
    raw = bytes_client(h)
    queue_key = h.key("queue", "bulk")
    # The leader records P:control from its cursor on; on its first pass it starts the cursor at
    # the stream's end. Wait for it, or the commands below would never be audited at all.
    wait_for(lambda: h.r.exists(h.key("audit", "cursor")), 15, "the audit cursor (the leader's first audit pass)")

    good = h.enqueue_many("bulk", (h.envelope("noop", {}) for _ in range(500)))

    # (a) raw NUL bytes in the job text: not JSON, so no usable id.
    nul_after = xadd_bytes(raw, queue_key, {"job": b'{"id":"' + new_id("nul").encode()
                                             + b'","type":"noop","payload":{}}\x00garbage'})
    nul_in_id = xadd_bytes(raw, queue_key, {"job": b'{"id":"nul\x00id","type":"noop","payload":{}}'})
    # ... and an id that is a JSON escape of NUL: valid JSON, invalid id.
    escaped_id = xadd_bytes(raw, queue_key, {"job": b'{"id":"nul\\u0000id","type":"noop","payload":{}}'})
    # (b) a valid envelope whose payload carries \u0000 (JSON escape) and fails with that text.
    nul_payload = h.enqueue("bulk", "noop", {"fail": "bad\u0000text", "permanent": True}, id=new_id("nulpayload"))
    # ... and a valid one whose userId has it.
    nul_user = h.enqueue("bulk", "noop", {}, id=new_id("nuluser"), userId="user\u0000x")
    # (d) invalid UTF-8 inside the job text.
    bad_utf8 = xadd_bytes(raw, queue_key, {"job": b'{"id":"' + new_id("utf8").encode()
                                            + b'","type":"noop","payload":{"t":"\xff\xfe"}}'})
    # (c) control commands with NUL bytes and invalid UTF-8.
    control_key = h.key("control")
    bad_controls = [
        xadd_bytes(raw, control_key, {"cmd": b"pause", "queue": b"de\x00fault"}),
        xadd_bytes(raw, control_key, {"cmd": b"cancel", "jobId": b"a\x00b"}),
        xadd_bytes(raw, control_key, {"cmd": b"pause", "queue": b"\xff\xfe"}),
    ]

    good += h.enqueue_many("bulk", (h.envelope("noop", {}) for _ in range(500)))
    invalid = {f"invalid:bulk:{nul_after}": ("raw NUL after the JSON", r"(?i)json"),
               f"invalid:bulk:{nul_in_id}": ("raw NUL inside the id", r"(?i)json"),
               f"invalid:bulk:{escaped_id}": ("\\u0000 in the id", r"(?i)\bid\b"),
               f"invalid:bulk:{bad_utf8}": ("invalid UTF-8", r"(?i)utf-?8")}

    h.wait_states(good, "completed", timeout=60)
    in_redis = time.monotonic()
    # Every path is checked, and the failures are reported together: which records are held back.
    problems: list[str] = []

    def check(what: str, fn) -> None:
        try:
            fn()
        except AssertionError as e:
            # The first line: pytest's rewriting adds the failed expression after it.
            problems.append(f"{what}: {str(e).splitlines()[0] if str(e) else repr(e)}")

    def good_rows() -> None:
        took = wait_rows(h, good, "completed", timeout=10,
                         what="the good jobs around the poison entries, 10 s after they all completed in Redis")
        print(f"the 1000 good rows were complete {took:.1f}s after the jobs completed in Redis")

    check("(good) 1,000 noop jobs", good_rows)

    # One wait for every row of a poison entry or job (10 s from the good jobs' completion).
    expected = [nul_payload, nul_user, *invalid]

    def special_rows():
        rows = {i: pg_row(h, i) for i in expected}
        return rows if all(rows.values()) else None

    try:
        rows = wait_for(special_rows, max(1.0, 10 - (time.monotonic() - in_redis)),
                        "a jobs row for each poison entry and job", interval=0.2)
    except AssertionError as e:
        rows = {i: pg_row(h, i) for i in expected}
        names = {nul_payload: "(b) NUL in payload and error", nul_user: "(b) NUL in userId",
                 **{i: f"({'d' if 'UTF' in w else 'a'}) {w}" for i, (w, _) in invalid.items()}}
        problems.append(f"poison rows: {e}; no row for: "
                        + ", ".join(f"{names[i]} {i}" for i, r in rows.items() if r is None))

    # (b): the row is there, failed as in Redis, and the NUL is spelled \u0000.
    def nul_payload_row() -> None:
        hash_ = h.wait_state(nul_payload, "failed", timeout=5)
        assert "bad" in hash_.get("error", "") and "text" in hash_["error"], hash_
        row = rows.get(nul_payload)
        assert row is not None, f"{nul_payload} (Redis: failed, error {hash_.get('error')!r}) has no jobs row"
        assert row["state"] == "failed", row
        assert row["error"] and "bad" in row["error"] and "text" in row["error"], f"the error is kept: {row}"
        assert NUL_SIX in (row["payload"] or "") + (row["error"] or ""), \
            f"the NUL is kept as the six characters \\u0000 in payload or error: {row}"
        if row["payload"] is not None:
            assert NUL_SIX in row["payload"], f"the payload keeps the NUL as \\u0000: {row['payload']!r}"

    check("(b) NUL in payload and error", nul_payload_row)

    def nul_user_row() -> None:
        state = h.wait_state(nul_user, ("completed", "failed"), timeout=5)["state"]
        row = rows.get(nul_user)
        assert row is not None, f"{nul_user} ({state} in Redis) has no jobs row"
        assert row["state"] == state, f"the row says what Redis says ({state}): {row}"

    check("(b) NUL in userId", nul_user_row)

    # (a), (d): one failed row each, with a reason.
    for job_id, (what, reason) in invalid.items():
        def invalid_row(job_id=job_id, what=what, reason=reason) -> None:
            row = rows.get(job_id)
            assert row is not None, f"{job_id} has no jobs row"
            assert row["state"] == "failed", row
            assert row["error"] and re.search(reason, row["error"]), f"the error names the problem: {row}"
            if job_id == f"invalid:bulk:{nul_after}" and row["raw"] is not None:
                assert "garbage" in row["raw"], f"the entry's text is kept past its NUL: {row['raw']!r}"

        check(f"({'d' if 'UTF' in what else 'a'}) {what}", invalid_row)

    check("the daemon", lambda: None if d.alive() else pytest.fail(f"the daemon died:\n{d.tail()}"))

    # (c): a good command after the bad ones is audited on time, and is carried out.
    pause = h.control("pause", queue="solo")
    wait_for(lambda: h.r.sismember(h.key("paused"), "solo"), 5, "queue solo to be paused")
    resume = h.control("resume", queue="solo")
    wait_for(lambda: not h.r.sismember(h.key("paused"), "solo"), 5, "queue solo to be resumed")

    def audited():
        found = h.pg("SELECT control_entry, action, target, source FROM audit WHERE control_entry = ANY(%s)",
                     ([pause, resume],))
        return found if len(found) == 2 else None

    def audit_rows() -> None:
        try:
            found = wait_for(audited, 10, "audit rows of a pause and a resume sent after NUL commands", interval=0.2)
        except AssertionError as e:
            all_rows = h.pg("SELECT control_entry, action, target FROM audit ORDER BY id")
            raise AssertionError(f"{e}; the audit table has {len(all_rows)} rows {all_rows[:8]}; audit cursor at "
                                 f"{h.r.get(h.key('audit', 'cursor'))}; the bad commands are {bad_controls}, "
                                 f"the good ones {pause}, {resume}") from None
        assert sorted((r[1], r[2], r[3]) for r in found) == [("pause", "solo", "control-stream"),
                                                               ("resume", "solo", "control-stream")], found

    check("(c) audit of a control command after NUL ones", audit_rows)

    job = h.enqueue("solo", "noop", {})
    h.wait_state(job, "completed", timeout=10)
    raw.close()
    assert d.alive(), f"the daemon survives the poison:\n{d.tail()}"
    assert not problems, f"{len(problems)} record paths held back or wrong:\n" + "\n".join(problems)


# ---------------------------------------------------------------------------- 4. yt-dlp metadata


@pytest.mark.timeout(150)
def test_titles_with_nul_and_a_lone_surrogate_from_yt_dlp_hold_back_no_record(h: Harness, media):
    """yt-dlp's JSON carries what a page says: `&#0;` becomes \\u0000 and `&#xD800;` a lone
    surrogate (a code point no UTF-8 text can hold). Whether each download completes or fails,
    its jobs row and worker_downloads row say so, and the records of the jobs after it are not
    held back; a completed download keeps its whole title."""
    pages = RawPageServer().start()
    try:
        video = media.url("media/title.mp4").encode()

        def page(name: str, title: bytes) -> str:
            return pages.add(f"page/{name}.html",
                             b"<!DOCTYPE html><html><head><meta charset='utf-8'><title>" + title + b"</title></head>"
                             b"<body><video controls><source src='" + video + b"' type='video/mp4'></video></body></html>")

        cases = {"NUL": page("nul", b"bad &#0; nul title"),
                 "lone surrogate": page("surrogate", b"bad &#xD800; surrogate \xff\xfe title")}
        d = yt_daemon(h)
        started = {what: enqueue_download(h, url, quality="best", fmt="mp4") for what, url in cases.items()}
        outcomes = {}
        for what, (job, _) in started.items():
            state = h.wait_state(job, ("completed", "failed"), timeout=90)
            outcomes[what] = state["state"]
            print(f"{what}: the download job is {state['state']} in Redis: error {state.get('error')!r}, "
                  f"result {state.get('result', '')[:200]!r}")
        in_redis = time.monotonic()
        after = h.enqueue_many("default", (h.envelope("noop", {}) for _ in range(50)))
        h.wait_states(after, "completed", timeout=30)

        problems: list[str] = []

        def left() -> float:
            return max(1.0, 10 - (time.monotonic() - in_redis))

        try:
            wait_rows(h, after, "completed", timeout=left(), what="50 noop jobs after the downloads")
        except AssertionError as e:
            problems.append(f"the jobs after the downloads: {str(e).splitlines()[0]}")
        for what, (job, download_id) in started.items():
            wanted = outcomes[what]
            try:
                wait_rows(h, [job], wanted, timeout=left(), what=f"the {what} download job, as Redis says")
            except AssertionError as e:
                problems.append(f"{what}: the jobs row: {str(e).splitlines()[0]}")
            try:
                wait_for(lambda: (r := row(h, download_id)) is not None and r["status"] == wanted, left(),
                         f"worker_downloads row {download_id} to be {wanted}", interval=0.2)
            except AssertionError as e:
                problems.append(f"{what}: the worker_downloads row: {str(e).splitlines()[0]}; "
                                f"now {row(h, download_id)}")
            if wanted == "completed":
                titles = h.pg("SELECT title FROM worker_downloads WHERE id = %s", (download_id,))
                if not titles or not titles[0][0]:
                    problems.append(f"{what}: the completed download's row has no title: {titles}")
                elif "bad" not in titles[0][0] or "title" not in titles[0][0]:
                    problems.append(f"{what}: the title is cut short: {titles[0][0]!r}")
        assert d.alive(), f"the daemon survives the titles:\n{d.tail()}"
        assert not problems, f"{len(problems)} records held back or wrong:\n" + "\n".join(problems)
    finally:
        pages.stop()


# ---------------------------------------------------------------------------- 5. refused rows


@pytest.mark.timeout(90)
def test_a_row_postgres_refuses_is_stored_as_text_or_set_aside_and_the_rest_go_on(h: Harness):
    """A payload number beyond jsonb's range is stored as a JSON string of the payload; an
    outbox entry that is no record at all goes to P:records:dead with its reason and is counted;
    neither holds up the jobs around them."""
    d = h.daemon()
    before = h.enqueue_many("default", (h.envelope("noop", {}) for _ in range(200)))
    huge = h.xadd_job("default", '{"id":"%s","type":"noop","payload":{"n":1e999999999}}' % (huge_id := new_id("huge")))
    assert huge
    h.r.xadd(h.key("records"), {"k": "job", "id": "orphan"})      # no state, queue or type
    h.r.xadd(h.key("records"), {"k": "mystery", "x": "y"})
    after = h.enqueue_many("default", (h.envelope("noop", {}) for _ in range(200)))

    wait_rows(h, before + after, "completed", timeout=20, what="the jobs around the refused rows")
    row = wait_for(lambda: h.pg("SELECT state, payload FROM jobs WHERE id = %s", (huge_id,)), 20,
                   "the row of the job whose payload jsonb refuses")
    state, payload = row[0]
    assert state == "completed"
    assert isinstance(payload, str) and "1e999999999" in payload, f"payload kept as its text: {payload!r}"

    dead = wait_for(lambda: h.r.xrange(h.key("records", "dead")), 10, "the dead-letter stream")
    reasons = {fields["reason"] for _, fields in dead}
    assert len(dead) == 2, dead
    assert any("without id, state, queue or type" in r for r in reasons), reasons
    assert any("mystery" in r for r in reasons), reasons
    assert {fields.get("id") for _, fields in dead} >= {"orphan"}
    wait_for(lambda: h.r.xlen(h.key("records")) == 0, 10, "an empty outbox")

    _, text = http_get(h.metrics_url(d) + "/metrics")
    metrics = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
               if line.startswith("medianest_records_")}
    assert metrics.get("medianest_records_dead_total") == 2, metrics
    assert metrics.get("medianest_records_written_total", 0) >= 401, metrics
    assert d.alive()


def test_only_unfinished_rows_are_indexed_by_state(h: Harness):
    """Finished rows, nearly every row of `jobs`, cost PostgreSQL no entry in an index on state: the
    index holds the queued, scheduled and active rows, and a look-up of those uses it."""
    h.daemon()
    done = h.enqueue("default", "noop", {})
    running = h.enqueue("default", "sleep", {"seconds": 20})
    wait_for(lambda: h.pg("SELECT state FROM jobs WHERE id = %s", (done,)) == [("completed",)], 15, "the finished row")
    wait_for(lambda: h.pg("SELECT state FROM jobs WHERE id = %s", (running,)) == [("active",)], 15, "the running row")
    indexes = dict(h.pg("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'jobs'"))
    on_state = {name: d for name, d in indexes.items() if re.search(r"\(state\)", d)}
    assert list(on_state) == ["jobs_unfinished_idx"], indexes
    assert "completed" in on_state["jobs_unfinished_idx"] and "WHERE" in on_state["jobs_unfinished_idx"]

    def plan(state: str) -> str:
        with psycopg.connect(h.database_url, autocommit=True) as conn:
            conn.execute("SET enable_seqscan = off")
            return "\n".join(r[0] for r in conn.execute(f"EXPLAIN SELECT id FROM jobs WHERE state = '{state}'"))

    assert "jobs_unfinished_idx" in plan("active")
    assert "jobs_unfinished_idx" not in plan("completed"), "finished rows are not in the index"
