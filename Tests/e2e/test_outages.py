"""Redis restarted under load and PostgreSQL stopped for 10 s: the daemon stays up, reconnects,
and loses nothing. These tests use servers of their own."""

from __future__ import annotations

import time

import pytest

from harness import Harness, PrivatePostgres, PrivateRedis, http_get, wait_for


def completed_count(h: Harness, ids: list[str]) -> int:
    return sum(1 for s in h.states(ids).values() if s == "completed")


@pytest.mark.timeout(180)
def test_redis_restarted_under_load_the_daemon_reconnects_and_nothing_is_lost(private_redis: PrivateRedis,
                                                                           make_harness):
    h = make_harness(redis_url=private_redis.url)
    d = h.daemon(queues={"default": {"concurrency": 4}})
    first = h.enqueue_many("default", (h.envelope("sleep", {"seconds": 0.1}) for _ in range(120)))
    wait_for(lambda: completed_count(h, first) >= 20, 30, "20 jobs to complete before the restart")

    private_redis.restart(down=1.5)
    wait_for(h.r.ping, 10, "the test's own Redis connection to come back")
    second = h.enqueue_many("default", (h.envelope("sleep", {"seconds": 0.05}) for _ in range(60)))
    ids = first + second

    h.wait_states(ids, "completed", timeout=90)
    assert d.alive(), "the daemon survives the restart"
    h.wait_pg_states(ids, "completed", timeout=30)
    h.wait_drained("default")
    counts = h.event_counts("job:completed")
    twice = {i: counts[i] for i in ids if counts[i] > 1}
    assert not twice, f"jobs completed more than once: {twice}"


def test_healthz_follows_redis(private_redis: PrivateRedis, make_harness):
    h = make_harness(redis_url=private_redis.url)
    d = h.daemon()
    url = h.metrics_url(d) + "/healthz"
    wait_for(lambda: http_get(url)[0] == 200, 5, "/healthz to answer 200")

    private_redis.stop()
    try:
        wait_for(lambda: http_get(url)[0] == 503, 10, "/healthz to answer 503 without Redis",
                 interval=0.2, retry_on=(OSError,))
    finally:
        private_redis.start()
    wait_for(lambda: http_get(url)[0] == 200, 20, "/healthz to answer 200 again", interval=0.2)
    assert d.alive()
    job_id = h.enqueue("default", "noop", {})
    h.wait_state(job_id, "completed", timeout=15)


@pytest.mark.timeout(180)
def test_postgres_stopped_for_10s_the_daemon_stays_up_and_records_catch_up(private_pg: PrivatePostgres,
                                                                          make_harness):
    h = make_harness(database_url=private_pg.url)
    d = h.daemon()
    before = [h.enqueue("default", "noop", {}) for _ in range(20)]
    h.wait_pg_states(before, "completed", timeout=30)

    private_pg.stop()
    t0 = time.monotonic()
    try:
        during = h.enqueue_many("default", (h.envelope("noop", {}) for _ in range(40)))
        # Redis is the live state: jobs keep running while the record store is away.
        h.wait_states(during, "completed", timeout=9)
        status, _ = http_get(h.metrics_url(d) + "/healthz")
        assert status == 200, "healthz follows Redis, not PostgreSQL"
        time.sleep(max(0.0, 10 - (time.monotonic() - t0)))
        assert d.alive(), "the daemon stays up without PostgreSQL"
    finally:
        private_pg.start()

    after = [h.enqueue("default", "noop", {}) for _ in range(10)]
    h.wait_pg_states(before + during + after, "completed", timeout=60)
    assert d.alive()
    h.assert_completed_once(before + during + after)
