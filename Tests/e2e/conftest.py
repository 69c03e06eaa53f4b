"""Fixtures of the end-to-end tests.

Needs MEDIANEST_TEST_REDIS_URL and MEDIANEST_TEST_DATABASE_URL (scripts/test sets them from
scripts/services) and the daemon at MEDIANEST_BIN (default .build/debug/medianest-worker).
A missing or unreachable service fails the tests; nothing is skipped.

Each test gets its own Redis key prefix, its own PostgreSQL database (CREATE DATABASE
t_<random>, dropped afterwards) and its own folders; daemons it starts are stopped at the
end, always, and a failing test shows the tail of their logs.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psycopg
import pytest
import redis

from harness import Harness, PrivatePostgres, PrivateRedis, daemon_binary

DEFAULT_TEST_TIMEOUT = 120


def pytest_sessionstart(session: pytest.Session) -> None:
    # SIGTERM (a CI time limit, say) unwinds like Ctrl-C, so that fixtures stop the daemons
    # and servers they started.
    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


# ---------------------------------------------------------------- time limit per test


class TimeLimitExceeded(Exception):
    pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):
    marker = item.get_closest_marker("timeout")
    limit = int(marker.args[0]) if marker else DEFAULT_TEST_TIMEOUT

    def expire(signum, frame):
        raise TimeLimitExceeded(f"test ran longer than {limit}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(limit)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# ---------------------------------------------------------------- daemon logs on failure


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when in ("setup", "call") and report.failed:
        for harness in getattr(item, "medianest_harnesses", []):
            for d in harness.daemons:
                report.sections.append((f"daemon {d.name} ({harness.prefix})", d.tail()))
        for server in getattr(item, "medianest_servers", []):
            report.sections.append((f"{type(server).__name__} log", server.log_tail()))


# ---------------------------------------------------------------- services


@pytest.fixture(scope="session")
def services() -> tuple[str, str]:
    """The shared Redis and PostgreSQL URLs; fails the run when they are missing or unreachable."""
    redis_url = os.environ.get("MEDIANEST_TEST_REDIS_URL")
    database_url = os.environ.get("MEDIANEST_TEST_DATABASE_URL")
    if not redis_url or not database_url:
        pytest.fail("MEDIANEST_TEST_REDIS_URL and MEDIANEST_TEST_DATABASE_URL must be set: "
                    "run scripts/test, or export them from `scripts/services start`", pytrace=False)
    try:
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=3)
        client.ping()
        client.close()
    except redis.RedisError as e:
        pytest.fail(f"Redis at {redis_url} is unreachable: {e}", pytrace=False)
    try:
        with psycopg.connect(database_url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as e:
        pytest.fail(f"PostgreSQL at {database_url} is unreachable: {e}", pytrace=False)
    return redis_url, database_url


@pytest.fixture(scope="session")
def daemon_bin() -> Path:
    path = daemon_binary()
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"no daemon binary at {path}: run `swift build` or set MEDIANEST_BIN", pytrace=False)
    return path


@pytest.fixture
def make_harness(request, services, daemon_bin, tmp_path):
    """make_harness(redis_url=None, database_url=None) -> Harness; the shared services by default."""
    created: list[Harness] = []
    request.node.medianest_harnesses = created

    def make(redis_url: str | None = None, database_url: str | None = None) -> Harness:
        workdir = tmp_path / f"h{len(created) + 1}"
        workdir.mkdir()
        h = Harness(redis_url or services[0], database_url or services[1], workdir)
        created.append(h)
        return h

    yield make
    for h in reversed(created):
        h.cleanup()


@pytest.fixture
def h(make_harness) -> Harness:
    """A test's world on the shared Redis and PostgreSQL."""
    return make_harness()


@pytest.fixture
def private_redis(request, tmp_path) -> PrivateRedis:
    server = PrivateRedis(tmp_path / "private-redis").start()
    request.node.medianest_servers = getattr(request.node, "medianest_servers", []) + [server]
    yield server
    server.stop()


@pytest.fixture
def private_pg(request) -> PrivatePostgres:
    server = PrivatePostgres()
    request.node.medianest_servers = getattr(request.node, "medianest_servers", []) + [server]
    try:
        server.start()
        yield server
    finally:
        server.destroy()
