"""Entries that are not valid jobs are acknowledged and recorded failed with a reason, never
retried, and the good jobs around them keep flowing."""

from __future__ import annotations

import itertools
import json
import re
import time

from harness import Harness, new_id, wait_for

SIZE_WORDS = re.compile(r"(?i)(large|big|size|exceed|limit|kib|bytes|64)")


def matches_each(patterns: list[re.Pattern], texts: list[str]) -> bool:
    """True when every pattern matches a different text."""
    if len(texts) < len(patterns):
        return False
    return any(all(p.search(t) for p, t in zip(patterns, perm))
               for perm in itertools.permutations(texts, len(patterns)))


def test_poison_entries_fail_with_a_reason_while_good_jobs_flow(h: Harness):
    d = h.daemon()
    good_before = [h.enqueue("default", "noop", {}) for _ in range(10)]

    # Entries with a valid id: failed in Redis and in PostgreSQL under that id.
    no_type, unknown_type, too_big = new_id("notype"), new_id("unknown"), new_id("big")
    bad_payload, bad_attempts, bad_run_at = new_id("payload"), new_id("attempts"), new_id("runat")
    known = {
        no_type: (json.dumps({"id": no_type, "payload": {}}), re.compile(r"(?i)type")),
        unknown_type: (json.dumps({"id": unknown_type, "type": "no.such.type", "payload": {}}),
                       re.compile(r"(?i)type|no\.such\.type")),
        bad_payload: (json.dumps({"id": bad_payload, "type": "noop", "payload": "not an object"}),
                      re.compile(r"(?i)payload")),
        bad_attempts: (json.dumps({"id": bad_attempts, "type": "noop", "payload": {}, "maxAttempts": 0}),
                       re.compile(r"(?i)max_?attempts")),
        bad_run_at: (json.dumps({"id": bad_run_at, "type": "noop", "payload": {}, "runAt": "tomorrow"}),
                     re.compile(r"(?i)run_?at")),
    }
    # Too big: the daemon need not parse it to find its id, so its row may have an id of the
    # daemon's choosing; if it does use the id, the hash says failed too.
    big_text = json.dumps({"id": too_big, "type": "noop", "payload": {"pad": "x" * (100 * 1024)}})
    anonymous = [
        ("not json {", re.compile(r"(?i)json")),
        ("[1, 2, 3]", re.compile(r"(?i)object|array|json")),
        (json.dumps({"type": "noop", "payload": {}}), re.compile(r"(?i)\bid\b")),
        (json.dumps({"id": "has spaces 42", "type": "noop", "payload": {}}), re.compile(r"(?i)\bid\b")),
    ]
    for text, _ in anonymous[:2]:
        h.xadd_job("default", text)
    good_between = [h.enqueue("default", "noop", {}) for _ in range(5)]
    for text, _ in list(known.values()) + anonymous[2:]:
        h.xadd_job("default", text)
    h.xadd_job("default", big_text)
    good_after = [h.enqueue("default", "noop", {}) for _ in range(10)]
    good = good_before + good_between + good_after

    h.wait_states(good, "completed", timeout=30)
    h.wait_pg_states(good, "completed", timeout=30)
    h.wait_drained("default")
    assert d.alive(), "the daemon survives poison entries"

    # In Redis, for the entries that carry a valid id.
    for job_id, (_, reason) in known.items():
        state = h.wait_state(job_id, "failed", timeout=10)
        assert state.get("error"), f"{job_id}: failed without an error: {state}"
        assert reason.search(state["error"]), f"{job_id}: error does not name the problem: {state['error']!r}"

    big_state = h.job(too_big)
    if big_state:
        assert big_state.get("state") == "failed", big_state
        assert SIZE_WORDS.search(big_state.get("error", "")), big_state

    # In PostgreSQL, always: one failed row per poison entry.
    total = len(known) + len(anonymous) + 1

    def failed_rows():
        rows = h.pg("SELECT id, error FROM jobs WHERE state = 'failed'")
        return rows if len(rows) >= total else None

    rows = wait_for(failed_rows, 30, f"{total} failed rows in jobs")
    assert len(rows) == total, f"exactly one failed row per poison entry: {rows}"
    by_id = dict(rows)
    for job_id, (_, reason) in known.items():
        assert job_id in by_id, f"{job_id} has a jobs row"
        assert by_id[job_id] and reason.search(by_id[job_id]), f"{job_id}: {by_id[job_id]!r}"
    others = [error or "" for row_id, error in rows if row_id not in known]
    assert len(others) == len(anonymous) + 1
    assert all(others), f"every failed row has an error: {others}"
    assert matches_each([reason for _, reason in anonymous] + [SIZE_WORDS], others), \
        f"each invalid entry's error names its problem: {others}"

    # Never retried, never started.
    time.sleep(1.5)
    for job_id in known:
        assert h.job(job_id)["state"] == "failed"
        names = [e["event"] for e in h.events(job_id)]
        assert "job:started" not in names and "job:retrying" not in names, f"{job_id}: {names}"
    assert len(h.pg("SELECT id FROM jobs WHERE state = 'failed'")) == total
    h.assert_completed_once(good)
