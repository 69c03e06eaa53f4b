"""sd_notify (contract section 10), seen by a NOTIFY_SOCKET receiver: READY=1 once the queues
are consumed, WATCHDOG=1 at half of WATCHDOG_USEC, RELOADING=1 on SIGHUP, STOPPING=1 on SIGTERM."""

from __future__ import annotations

import signal
import statistics
import time

import pytest

from harness import Harness, wait_for
from ops_support import NotifyReceiver, control


@pytest.fixture
def notify():
    receiver = NotifyReceiver()
    yield receiver
    receiver.close()


def test_ready_watchdog_reloading_and_stopping(h: Harness, notify: NotifyReceiver):
    watchdog_usec = 600_000  # pings every 300 ms
    started = time.monotonic()
    d = h.daemon(env={"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": str(watchdog_usec)})
    ready = wait_for(lambda: notify.first("READY=1"), 10, "READY=1")
    assert ready >= started
    logged_ready = [line for line in d.lines() if line.get("msg") == "ready"]
    assert logged_ready, "READY=1 follows the queues being consumed"
    wait_for(lambda: any(m.startswith("STATUS=") or "\nSTATUS=" in m for _, m in notify.snapshot()), 10, "a STATUS= line")

    time.sleep(3.2)
    pings = [t for t in notify.times_of("WATCHDOG=1") if t >= ready]
    intervals = [b - a for a, b in zip(pings, pings[1:])]
    assert len(pings) >= 8, f"WATCHDOG=1 every 300 ms for 3 s, got {len(pings)}"
    median = statistics.median(intervals)
    assert 0.25 <= median <= 0.4, f"pings at half of WATCHDOG_USEC (0.3 s), median {median:.3f}s: {intervals}"
    assert max(intervals) < 0.6, f"no ping comes later than the watchdog period: {max(intervals):.3f}s"

    # SIGHUP: RELOADING=1 (with MONOTONIC_USEC), then READY=1 again.
    before = time.monotonic()
    d.signal(signal.SIGHUP)
    reloading = wait_for(lambda: [t for t in notify.times_of("RELOADING=1") if t >= before], 5, "RELOADING=1")[0]
    wait_for(lambda: [t for t in notify.times_of("READY=1") if t > reloading], 5, "READY=1 after the reload")
    reload_message = [m for t, m in notify.snapshot() if "RELOADING=1" in m.split("\n")][0]
    assert "MONOTONIC_USEC=" in reload_message, reload_message
    # The control socket's reload does the same.
    before = time.monotonic()
    assert control(d, "reload")["ok"]
    wait_for(lambda: [t for t in notify.times_of("RELOADING=1") if t >= before], 5, "RELOADING=1 from ctl reload")

    # SIGTERM: STOPPING=1 at once, a clean exit, and no READY=1 after it.
    before = time.monotonic()
    d.signal(signal.SIGTERM)
    stopping = wait_for(lambda: [t for t in notify.times_of("STOPPING=1") if t >= before], 5, "STOPPING=1")[0]
    assert stopping - before < 1.0
    assert d.wait(15) == 0
    assert not [t for t in notify.times_of("READY=1") if t > stopping]


def test_no_watchdog_pings_for_another_process(h: Harness, notify: NotifyReceiver):
    # WATCHDOG_PID names another process: systemd asks that one, not this daemon.
    d = h.daemon(env={"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "400000", "WATCHDOG_PID": "1"})
    wait_for(lambda: notify.first("READY=1"), 10, "READY=1")
    time.sleep(1.5)
    assert notify.times_of("WATCHDOG=1") == []
    assert d.stop() == 0


def test_without_notify_socket_nothing_breaks(h: Harness):
    d = h.daemon(env={"WATCHDOG_USEC": "400000"})
    assert control(d, "status")["ok"]
    assert d.stop() == 0
