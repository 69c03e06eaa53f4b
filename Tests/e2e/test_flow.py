"""Jobs flow from a plain XADD to `completed`, once: in bulk, across two daemons, through the
CLI, with duplicate ids; the events and logs that go with them."""

from __future__ import annotations

import json
import re
import time

import pytest

from harness import Harness, new_id, parse_time, wait_for

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}(Z|\+00:00)$")


@pytest.mark.timeout(300)
def test_thousand_jobs_enqueued_by_plain_xadd_all_complete_once(h: Harness):
    h.daemon()
    ids = h.enqueue_many("bulk", (h.envelope("noop", {}) for _ in range(1000)))
    assert len(set(ids)) == 1000

    h.wait_states(ids, "completed", timeout=180)
    h.wait_pg_states(ids, "completed", timeout=60)
    h.assert_completed_once(ids)
    h.wait_drained("bulk")
    for job in h.jobs(ids[:20]):
        assert job["queue"] == "bulk"
        assert job["type"] == "noop"
        assert job["attempt"] == "1"


def test_two_daemons_share_a_queue_and_run_every_job_once(h: Harness):
    a = h.daemon("a", queues={"default": {"concurrency": 2}})
    b = h.daemon("b", queues={"default": {"concurrency": 2}})
    ids = h.enqueue_many("default", (h.envelope("sleep", {"seconds": 0.2}) for _ in range(30)))

    h.wait_states(ids, "completed", timeout=60)
    rows = h.wait_pg_states(ids, "completed", timeout=30)
    h.assert_completed_once(ids)
    workers = {row["worker"] for row in rows.values()}
    assert None not in workers, "every jobs row names the worker that ran it"
    assert len(workers) == 2, f"both daemons ran jobs: workers seen {workers}"
    assert a.alive() and b.alive()


def test_events_are_published_logged_and_sent_to_the_user_channel(h: Harness):
    h.daemon()
    user = "user-" + new_id("u")
    pubsub = h.r.pubsub()
    pubsub.subscribe(h.key("events"), h.key("user", user))
    confirmed: set[str] = set()

    def subscribed() -> bool:
        msg = pubsub.get_message(timeout=0.2)
        if msg is not None and msg["type"] == "subscribe":
            confirmed.add(msg["channel"])
        return len(confirmed) == 2

    wait_for(subscribed, 5, "the subscriptions to be confirmed", interval=0)

    job_id = h.enqueue("default", "noop", {}, userId=user)
    other = h.enqueue("default", "noop", {})

    seen: dict[str, list[dict]] = {h.key("events"): [], h.key("user", user): []}

    def both_completed():
        msg = pubsub.get_message(timeout=0.2)
        while msg is not None:
            if msg["type"] == "message":
                seen[msg["channel"]].append(json.loads(msg["data"]))
            msg = pubsub.get_message(timeout=0.01)
        return all(any(e.get("event") == "job:completed" and e.get("jobId") == job_id for e in events)
                   for events in seen.values()) and \
            any(e.get("event") == "job:completed" and e.get("jobId") == other for e in seen[h.key("events")])

    wait_for(both_completed, 20, "job:completed on P:events and P:user:<userId>", interval=0)
    pubsub.close()

    for channel, events in seen.items():
        mine = [e for e in events if e.get("jobId") == job_id]
        names = [e["event"] for e in mine]
        assert "job:started" in names, f"{channel}: {names}"
        assert names.index("job:started") < names.index("job:completed"), f"{channel}: {names}"
        for e in mine:
            for field in ("event", "jobId", "queue", "type", "at"):
                assert field in e, f"{channel}: event without {field}: {e}"
            assert e["queue"] == "default"
            assert e["type"] == "noop"
            assert e["userId"] == user
            parse_time(e["at"])
    user_channel = seen[h.key("user", user)]
    assert all(e.get("jobId") == job_id for e in user_channel), \
        f"only the user's job is on the user's channel: {user_channel}"

    logged = [e["event"] for e in h.events(job_id)]
    assert "job:started" in logged and "job:completed" in logged, logged
    assert logged.index("job:started") < logged.index("job:completed")

    state = h.job(job_id)
    assert state["state"] == "completed"
    assert state["userId"] == user
    assert state["queue"] == "default" and state["type"] == "noop"
    assert state["attempt"] == "1"
    for field in ("createdAt", "startedAt", "finishedAt", "updatedAt"):
        assert TIMESTAMP.match(state.get(field, "")), f"{field} is RFC 3339 UTC with milliseconds: {state}"
    assert parse_time(state["startedAt"]) <= parse_time(state["finishedAt"])
    row = h.wait_pg_states([job_id], "completed")[job_id]
    assert row["user_id"] == user


def test_replaying_the_event_log_from_the_last_seen_id(h: Harness):
    h.daemon()
    first = h.enqueue("default", "noop", {})
    h.wait_state(first, "completed")
    wait_for(lambda: h.events(first, "job:completed"), 5, "job:completed of the first job in P:events:log")
    last_seen = h.event_log()[-1][0]

    # A client that was away: XREAD from the last id it saw gets exactly what came after.
    second = h.enqueue("default", "noop", {})
    h.wait_state(second, "completed")
    wait_for(lambda: h.events(second, "job:completed"), 5, "job:completed of the second job in P:events:log")
    replay = h.r.xread({h.key("events", "log"): last_seen}, count=100)
    events = [json.loads(fields["event"]) for _, entries in replay for _, fields in entries]
    names = [e["event"] for e in events if e.get("jobId") == second]
    assert "job:started" in names and names[-1] == "job:completed", names
    assert not [e for e in events if e.get("jobId") == first and e["event"] in ("job:started", "job:completed")], \
        "events seen before the reconnect are not replayed"


def test_daemon_logs_json_lines(h: Harness):
    d = h.daemon()
    job_id = h.enqueue("default", "noop", {})
    h.wait_state(job_id, "completed")
    wait_for(lambda: any(line.get("jobId") == job_id for line in d.lines()), 10,
             "a log line that names the job")
    raw = d.raw_lines()
    assert raw, "the daemon logs on stdout"
    for text in raw:
        obj = json.loads(text)
        assert isinstance(obj, dict)
        for key in ("ts", "level", "msg"):
            assert key in obj, f"log line without {key}: {text}"
    about_job = [line for line in d.lines() if line.get("jobId") == job_id]
    assert any(line.get("queue") == "default" and line.get("type") == "noop" for line in about_job), about_job


def test_enqueue_cli_prints_the_id_and_the_job_runs(h: Harness):
    d = h.daemon()
    out = h.cli("enqueue", "--queue", "default", "--type", "noop", "--payload", "{}", config=d.config)
    assert out.returncode == 0, out.stderr
    job_id = out.stdout.strip()
    assert re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", job_id), out.stdout
    h.wait_state(job_id, "completed")

    chosen = new_id("cli")
    out = h.cli("enqueue", "--queue", "default", "--type", "sleep", "--payload", '{"seconds": 0.1}',
                "--id", chosen, config=d.config)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == chosen
    state = h.wait_state(chosen, "completed")
    assert state["type"] == "sleep"
    h.wait_pg_states([job_id, chosen], "completed")


def test_the_same_id_enqueued_twice_runs_once(h: Harness):
    h.daemon()
    env = h.envelope("noop", {})
    text = json.dumps(env)
    pipe = h.r.pipeline(transaction=False)
    pipe.xadd(h.key("queue", "default"), {"job": text})
    pipe.xadd(h.key("queue", "default"), {"job": text})
    pipe.execute()

    h.wait_state(env["id"], "completed")
    h.wait_drained("default")
    time.sleep(0.5)
    assert len(h.events(env["id"], "job:started")) == 1
    assert len(h.events(env["id"], "job:completed")) == 1

    # Once more after it completed: still nothing runs twice.
    h.xadd_job("default", text)
    h.wait_drained("default")
    time.sleep(0.5)
    assert h.job(env["id"])["state"] == "completed"
    assert len(h.events(env["id"], "job:started")) == 1
    assert len(h.events(env["id"], "job:completed")) == 1
    assert len(h.pg("SELECT 1 FROM jobs WHERE id = %s", (env["id"],))) == 1
