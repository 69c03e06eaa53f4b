"""Schedules from jobs.yml: fired once per cluster under the leader lease, on through a leader's
death and through restarts, and a run missed while no daemon was up fires once."""

from __future__ import annotations

import collections
import signal
import time

import pytest

from harness import Harness, wait_for
from ops_support import leader_daemon, log_lines

EVERY_MS = 2000
SCHEDULE = {"tick": {"every": "2s", "job": {"type": "noop", "queue": "default", "payload": {"from": "schedule"}}}}


def fired_ticks(h: Harness) -> list[int]:
    """Ticks (epoch ms) whose job started, from the job:started events, in order."""
    ticks = []
    for e in h.events(event="job:started"):
        job = e.get("jobId", "")
        if job.startswith("schedule:tick:"):
            ticks.append(int(job.rsplit(":", 1)[1]))
    return ticks


def fire_logs(h: Harness) -> list[int]:
    """Ticks each daemon logged as fired (the scheduler's own account, before the queue's dedup)."""
    return [int(line["jobId"].rsplit(":", 1)[1])
            for msg in ("schedule fired", "schedule fired once for the ticks missed while no daemon led the cluster")
            for line in log_lines(h, msg) if line.get("schedule") == "tick"]


def assert_once_each(h: Harness) -> list[int]:
    started = fired_ticks(h)
    repeated = {t: n for t, n in collections.Counter(started).items() if n > 1}
    assert not repeated, f"ticks started more than once: {repeated}"
    logged = collections.Counter(fire_logs(h))
    twice = {t: n for t, n in logged.items() if n > 1}
    assert not twice, f"ticks fired more than once by the schedulers: {twice}"
    assert all(t % EVERY_MS == 0 for t in started), f"every: ticks are multiples of the interval since the epoch: {started}"
    return sorted(started)


@pytest.mark.timeout(150)
def test_two_daemons_fire_each_tick_once_and_go_on_when_the_leader_is_killed(h: Harness):
    a = h.daemon("a", schedules=SCHEDULE)
    b = h.daemon("b", schedules=SCHEDULE)
    wait_for(lambda: len(fired_ticks(h)) >= 4, 15, "four ticks")
    time.sleep(3)
    before = assert_once_each(h)
    gaps = [y - x for x, y in zip(before, before[1:])]
    assert all(g == EVERY_MS for g in gaps), f"with a leader up, every tick fires: {before}"

    leader = leader_daemon(h)
    assert leader is not None, "one daemon holds P:leader"
    follower = b if leader is a else a
    job = h.job(f"schedule:tick:{before[-1]}")
    assert job.get("type") == "noop" and job.get("queue") == "default"

    killed_at = time.time() * 1000
    leader.kill()  # SIGKILL: no lease handed over
    # The follower takes over within one lease (2 s here) and fires on.
    wait_for(lambda: len([t for t in fired_ticks(h) if t > killed_at]) >= 4, 20, "four ticks after the leader died")
    assert leader_daemon(h) is follower
    after = assert_once_each(h)
    later = [t for t in after if t > before[-1]]
    first_gap = later[0] - before[-1]
    assert first_gap <= 2 * EVERY_MS, f"at most one tick folded into the takeover: {before[-1]} then {later}"
    assert later[0] - killed_at <= 2000 + 1000 + EVERY_MS, "the takeover comes within one lease"
    assert all(y - x == EVERY_MS for x, y in zip(later, later[1:])), f"then every tick again: {later}"
    state = h.r.hgetall(h.key("schedule", "tick"))
    assert int(state["last"]) == max(after) or int(state["last"]) == max(after) + EVERY_MS, state
    assert state["lastJobId"].startswith("schedule:tick:")


@pytest.mark.timeout(150)
def test_restarts_do_not_fire_twice_and_a_missed_run_fires_once(h: Harness):
    a = h.daemon("a", schedules=SCHEDULE)
    wait_for(lambda: len(fired_ticks(h)) >= 2, 15, "two ticks")

    # A quick restart: the next tick fires once, the past is not fired again.
    assert a.stop() == 0
    a.start()
    wait_for(lambda: len(fired_ticks(h)) >= 5, 15, "more ticks after a restart")
    assert_once_each(h)

    # Nobody up for three ticks: one run for all of them when a daemon is back.
    assert a.stop() == 0
    down_at = time.time() * 1000
    last_before = max(fired_ticks(h))
    time.sleep(3 * EVERY_MS / 1000 + 0.5)
    up_at = time.time() * 1000
    a.start()
    wait_for(lambda: any(t > last_before for t in fired_ticks(h)), 10, "a tick after the downtime")
    time.sleep(0.5)
    ticks = assert_once_each(h)
    during = [t for t in ticks if last_before < t <= up_at]
    assert len(during) == 1, f"ticks missed while no daemon ran fire once: {during} (down {down_at:.0f}–{up_at:.0f})"
    assert during[0] > up_at - EVERY_MS, "the run is for the latest missed tick"
    missed = [line for line in a.lines() if line.get("msg", "").startswith("schedule fired once for the ticks missed")]
    assert missed and int(missed[0]["missedTicks"]) >= 2, missed
    wait_for(lambda: len([t for t in fired_ticks(h) if t > up_at]) >= 2, 10, "the cadence after the catch-up")
    assert_once_each(h)
    h.wait_pg_states([f"schedule:tick:{t}" for t in ticks], "completed")


def test_a_graceful_stop_hands_the_lease_over_at_once(h: Harness):
    a = h.daemon("a", schedules=SCHEDULE, lease="30s")
    wait_for(lambda: leader_daemon(h) is a, 10, "a to lead")
    b = h.daemon("b", schedules=SCHEDULE, lease="30s")
    wait_for(lambda: len(fired_ticks(h)) >= 2, 15, "two ticks")
    assert leader_daemon(h) is a
    assert a.stop() == 0
    # With a 30 s lease only a released lease lets b lead this soon.
    wait_for(lambda: leader_daemon(h) is b, 8, "b to lead after a's clean stop")
    stopped_at = time.time() * 1000
    wait_for(lambda: len([t for t in fired_ticks(h) if t > stopped_at]) >= 2, 10, "ticks fired by b")
    assert_once_each(h)
