"""The control socket (contract section 8) and `medianest-worker ctl`: every request, malformed
input, hundreds of concurrent clients, peers of other users, and the audit trail."""

from __future__ import annotations

import grp
import json
import os
import socket
import stat
import threading
import time
from pathlib import Path

import pytest

from harness import Harness, daemon_binary, wait_for
from ops_support import PEER_CLIENT, ControlClient, control, ctl, run_as


def audit_rows(h: Harness) -> list[dict]:
    rows = h.pg("SELECT actor, source, action, target, ok, detail, control_entry, peer_uid FROM audit ORDER BY id")
    cols = ("actor", "source", "action", "target", "ok", "detail", "control_entry", "peer_uid")
    return [dict(zip(cols, r)) for r in rows]


def test_every_request_on_the_socket(h: Harness):
    d = h.daemon()
    sock = d.settings["control"]["socket"]
    mode = stat.S_IMODE(os.stat(sock).st_mode)
    assert stat.S_ISSOCK(os.stat(sock).st_mode)
    assert mode == 0o600, f"the socket is created with control.mode (0600 here), got {oct(mode)}"

    with ControlClient(sock) as c:
        s = c.request("status", id="req-1")
        assert s["ok"] and s["cmd"] == "status" and s["id"] == "req-1"
        assert s["circuits"] == {}, "no outside service configured, no breaker"
        assert s["draining"] is False and s["redis"] is True and s["postgres"] is True
        assert {q["name"] for q in s["queues"]} == {"default", "bulk", "solo"}
        assert all(q["depth"] == 0 and q["active"] == 0 and q["paused"] is False for q in s["queues"])
        assert s["pid"] == d.pid

        # pause / resume: every daemon, through P:control, and lasting (P:paused)
        a = c.request("pause", queue="default")
        assert a["ok"] and a["paused"] is True and a["applied"] is True, a
        assert h.r.sismember(h.key("paused"), "default")
        assert [q for q in c.request("status")["queues"] if q["name"] == "default"][0]["paused"] is True
        held = h.enqueue("default", "noop")
        time.sleep(0.8)
        assert h.job(held).get("state") in (None, "queued"), "a paused queue starts nothing"
        a = c.request("resume", queue="default")
        assert a["ok"] and a["paused"] is False
        h.wait_state(held, "completed", timeout=10)

        # drain / undrain: this daemon only
        assert c.request("drain")["draining"] is True
        assert c.request("status")["draining"] is True
        waiting = h.enqueue("bulk", "noop")
        time.sleep(1.0)
        assert h.job(waiting).get("state") in (None, "queued"), "a drained daemon takes no jobs"
        assert c.request("undrain")["draining"] is False
        h.wait_state(waiting, "completed", timeout=10)

        # jobs: active jobs with their progress
        running = h.enqueue("solo", "sleep", {"seconds": 30})
        h.wait_state(running, "active", timeout=10)
        time.sleep(0.7)
        jobs = c.request("jobs")
        assert jobs["ok"]
        mine = [j for j in jobs["jobs"] if j["jobId"] == running]
        assert mine, jobs
        assert mine[0]["queue"] == "solo" and mine[0]["type"] == "sleep" and mine[0]["stage"] == "sleeping"
        assert 0 <= mine[0]["progress"] <= 100 and mine[0]["attempt"] == 1

        # cancel: a running job stops within 2 s; a queued one is cancelled at once
        t0 = time.monotonic()
        a = c.request("cancel", jobId=running)
        assert a["ok"] and a["outcome"] == "cancelled" and a["previousState"] == "active", a
        assert time.monotonic() - t0 < 3
        assert h.job(running)["state"] == "cancelled"
        a = c.request("cancel", jobId=running)
        assert not a["ok"] and "already finished" in a["error"]

        # retry: a failed job runs again
        failed = h.enqueue("default", "noop", {"fail": "boom", "permanent": True})
        h.wait_state(failed, "failed", timeout=10)
        a = c.request("retry", jobId=failed)
        assert a["ok"] and a["outcome"] == "queued", a
        wait_for(lambda: len(h.events(failed, "job:failed")) == 2, 10, "the retried job to fail again")
        a = c.request("retry", jobId=held)
        assert not a["ok"] and "completed" in a["error"] and "only failed or cancelled" in a["error"]
        a = c.request("retry", jobId="never-seen")
        assert not a["ok"] and "no job never-seen is known" in a["error"]

        # reload: re-reads jobs.yml like SIGHUP; a refused file leaves the running configuration
        h.write_config(d.name, queues={"default": {"concurrency": 7}})
        a = c.request("reload")
        assert a["ok"], a
        assert {q["name"]: q["concurrency"] for q in a["queues"]}["default"] == 7
        assert [q for q in c.request("status")["queues"] if q["name"] == "default"][0]["concurrency"] == 7
        d.config.write_text(d.config.read_text() + "\nshutdown_timeout: banana\n")
        a = c.request("reload")
        assert not a["ok"] and "shutdown_timeout" in a["error"], a
        assert c.request("status")["ok"]

    # The audit trail: who (the peer), what, on what; pause/resume carry their P:control entry.
    def audited():
        actions = [r["action"] for r in audit_rows(h)]
        return all(x in actions for x in ("pause", "resume", "drain", "undrain", "cancel", "retry", "reload"))

    wait_for(audited, 10, "the control actions in the audit table")
    rows = audit_rows(h)
    for r in rows:
        if r["source"] == "socket":
            assert r["actor"] == "uid 0 (root)" and r["peer_uid"] == 0, r
    pause = [r for r in rows if r["action"] == "pause"]
    assert len(pause) == 1 and pause[0]["target"] == "default" and pause[0]["control_entry"], pause
    assert [r for r in rows if r["action"] == "reload" and r["ok"] is False], "a refused reload is recorded as such"

    # A command of the API through P:control is recorded as "api", once.
    h.control("pause", queue="bulk")
    h.control("resume", queue="bulk")
    wait_for(lambda: len([r for r in audit_rows(h) if r["actor"] == "api"]) == 2, 10, "the API's commands in the audit table")
    api = [r for r in audit_rows(h) if r["actor"] == "api"]
    assert [(r["action"], r["target"], r["source"]) for r in api] == [("pause", "bulk", "control-stream"), ("resume", "bulk", "control-stream")]


def test_malformed_lines_get_an_error_and_harm_nothing(h: Harness):
    d = h.daemon()
    sock = d.settings["control"]["socket"]
    bystander = ControlClient(sock)
    assert bystander.request("status")["ok"]

    bad = ControlClient(sock)
    cases = [
        (b"this is not json\n", "not valid JSON"),
        (b"\xff\xfe\x00binary\n", "not valid JSON"),
        (b"[1,2,3]\n", "not a JSON object"),
        (b'"status"\n', "not a JSON object"),
        (b'{"command":"status"}\n', 'no "cmd"'),
        (b'{"cmd":42}\n', 'no "cmd"'),
        (b'{"cmd":"explode"}\n', "unknown cmd"),
        (b'{"cmd":"pause"}\n', 'needs "queue"'),
        (b'{"cmd":"pause","queue":"nosuch"}\n', "no queue named"),
        (b'{"cmd":"cancel","jobId":"bad id with spaces"}\n', "jobId"),
        (b'{"cmd":"retry"}\n', 'needs "jobId"'),
        (b'{"cmd":"status"\n', "not valid JSON"),
        (b"[" * 5000 + b"\n", "not valid JSON"),
        (b"x" * 70_000 + b"\n", "longer than 65536 bytes"),
    ]
    for data, expected in cases:
        bad.send_raw(data)
    for data, expected in cases:
        answer = bad.read_answer()
        assert answer["ok"] is False and expected in answer["error"], (data[:40], answer)
    # The same connection goes on working after all that, and blank lines are ignored.
    bad.send_raw(b"\n  \r\n")
    assert bad.request("status")["ok"]

    # A client that sends half a line and waits, and one that hangs up mid-line, hold nobody up.
    idle = ControlClient(sock)
    idle.send_raw(b'{"cmd":"sta')
    rude = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    rude.connect(sock)
    rude.sendall(b'{"cmd":"status"}\n{"cmd":"jo')
    rude.close()
    assert bystander.request("status")["ok"], "other connections are unharmed"
    idle.send_raw(b'tus"}\n')
    assert idle.read_answer()["ok"], "a line may arrive in pieces"
    for c in (bad, idle, bystander):
        c.close()
    assert d.alive()
    job = h.enqueue("default", "noop")
    h.wait_state(job, "completed", timeout=10)


def test_hundreds_of_concurrent_clients(h: Harness):
    d = h.daemon()
    sock = d.settings["control"]["socket"]
    clients = 300
    results: list[object] = [None] * clients
    barrier = threading.Barrier(clients)

    def one(i: int) -> None:
        try:
            with ControlClient(sock, timeout=30) as c:
                barrier.wait(30)
                # three requests in one write: answered in order
                c.send_raw(b'{"cmd":"status","id":1}\n{"cmd":"jobs","id":2}\n{"cmd":"status","id":3}\n')
                answers = [c.read_answer() for _ in range(3)]
                results[i] = [(a["ok"], a["id"], a["cmd"]) for a in answers]
        except Exception as e:  # noqa: BLE001 - reported below
            results[i] = e

    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    elapsed = time.monotonic() - t0
    expected = [(True, 1, "status"), (True, 2, "jobs"), (True, 3, "status")]
    wrong = [(i, r) for i, r in enumerate(results) if r != expected]
    assert not wrong, f"{len(wrong)} of {clients} clients went wrong, e.g. {wrong[:3]}"
    assert elapsed < 30, f"{clients} clients took {elapsed:.1f}s"
    assert control(d, "status")["ok"]
    assert d.alive()


def test_a_peer_of_another_user_is_refused_unless_in_the_sockets_group(h: Harness):
    # A socket everyone may open, so that the refusal is the daemon's (SO_PEERCRED), not the file's.
    d = h.daemon(control={"socket": str(h.sockdir / "open.sock"), "mode": "0666"})
    sock = d.settings["control"]["socket"]
    os.chmod(h.sockdir, 0o755)
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o666

    out = run_as("nobody", ["python3", "-c", PEER_CLIENT, sock])
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout.strip())
    assert answer.get("ok") is False and "permission denied" in answer["error"], answer
    assert "uid 65534" in answer["error"], answer

    r = ctl(h, d, "status", user="nobody")
    assert r.returncode == 1 and "permission denied" in r.stderr, (r.returncode, r.stdout, r.stderr)
    r = ctl(h, d, "pause", "default", user="nobody")
    assert r.returncode == 1
    assert not h.r.sismember(h.key("paused"), "default"), "a refused peer changes nothing"

    # A member of the socket's group is let in: give the socket nobody's primary group.
    nogroup = grp.getgrnam("nogroup").gr_gid
    os.chown(sock, -1, nogroup)
    out = run_as("nobody", ["python3", "-c", PEER_CLIENT, sock])
    answer = json.loads(out.stdout.strip())
    assert answer.get("ok") is True and answer.get("cmd") == "status", answer
    r = ctl(h, d, "status", user="nobody")
    assert r.returncode == 0 and "QUEUE" in r.stdout, r.stderr

    # With the file's own permissions closed, the kernel refuses before the daemon sees anything.
    os.chmod(sock, 0o660)
    os.chown(sock, -1, 0)
    out = run_as("nobody", ["python3", "-c", PEER_CLIENT, sock])
    assert json.loads(out.stdout.strip()) == {"connect_error": "Permission denied"}
    assert control(d, "status")["ok"]


def test_ctl_command_line(h: Harness):
    d = h.daemon()
    r = ctl(h, d, "status")
    assert r.returncode == 0, r.stderr
    for text in ("QUEUE", "default", "bulk", "solo", "redis     ok", "postgres  ok"):
        assert text in r.stdout, r.stdout
    r = ctl(h, d, "status", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["ok"] is True

    r = ctl(h, d, "pause", "solo")
    assert r.returncode == 0 and "paused" in r.stdout
    assert h.r.sismember(h.key("paused"), "solo")
    assert "PAUSED" in ctl(h, d, "status").stdout
    r = ctl(h, d, "resume", "solo")
    assert r.returncode == 0 and not h.r.sismember(h.key("paused"), "solo")

    r = ctl(h, d, "pause", "nosuch")
    assert r.returncode == 1 and "no queue named" in r.stderr
    r = ctl(h, d, "retry", "never-seen", "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["ok"] is False

    running = h.enqueue("solo", "sleep", {"seconds": 20})
    h.wait_state(running, "active", timeout=10)
    time.sleep(0.6)
    r = ctl(h, d, "jobs")
    assert r.returncode == 0 and running in r.stdout and "sleeping" in r.stdout and "[" in r.stdout, r.stdout

    # top: the cluster from Redis — queues, the daemon's heartbeat, the running job with its bar
    config = h.write_config("cli")
    top = h.cli("ctl", "top", "--once", config=config)
    assert top.returncode == 0, top.stderr
    assert "\x1b" not in top.stdout, "--once prints no escapes"
    for text in ("QUEUE", "solo", "DAEMON", running, "sleeping", "%"):
        assert text in top.stdout, top.stdout
    wait_for(lambda: str(d.pid) in h.cli("ctl", "top", "--once", config=config).stdout, 10, "the daemon's pid in top")

    r = ctl(h, d, "cancel", running)
    assert r.returncode == 0 and "cancelled" in r.stdout, r.stdout
    r = ctl(h, d, "drain")
    assert r.returncode == 0 and ctl(h, d, "status", "--json").stdout.count('"draining":true') == 1
    assert ctl(h, d, "undrain").returncode == 0
    assert ctl(h, d, "reload").returncode == 0

    # No daemon: exit 2 and a sentence that says what to check.
    r = ctl(h, None, "status", "--socket", str(h.sockdir / "nothing.sock"))
    assert r.returncode == 2 and "is the daemon running" in r.stderr, r.stderr
    # --socket from the configuration when not given
    r = h.cli("ctl", "status", config=d.config)
    assert r.returncode == 0 and "QUEUE" in r.stdout, r.stderr


def test_the_socket_goes_away_with_the_daemon_and_a_stale_one_is_replaced(h: Harness):
    d = h.daemon()
    sock = Path(d.settings["control"]["socket"])
    assert sock.exists()
    assert d.stop() == 0
    assert not sock.exists(), "a clean stop removes the socket"
    d.start()
    d.kill()
    assert sock.exists(), "a killed daemon leaves its socket behind"
    d.start()
    assert control(d, "status")["ok"], "the next start replaces a stale socket"
    # A second daemon on the same socket path refuses it and runs without one.
    other = h.daemon("other", control={"socket": str(sock), "mode": "0600"})
    assert any("control socket not started" in line.get("msg", "") for line in other.lines())
    assert control(d, "status")["pid"] == d.pid
