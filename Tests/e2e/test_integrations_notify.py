"""Notifications, error logs, signed webhooks, mail over STARTTLS, and secrets kept out of
logs and errors."""

from __future__ import annotations

import subprocess

import json
import time
import urllib.error
import urllib.request

from harness import daemon_binary, Harness, parse_time, wait_for
from integrations_support import (PLEX_TOKEN, UserMessages, SMTP_PASSWORD, SMTP_USER, WEBHOOK_SECRET, all_log_text, json_daemon,
                                  plex, plex_config, receiver, smtp)  # noqa: F401 (fixtures)
from test_integrations_overseerr import notifications
from webhook_receiver import sign


def webhooks(receiver, **extra) -> list[dict]:
    return [{"url": receiver.url, "secret": WEBHOOK_SECRET, **extra}]


def test_terminal_events_notify_the_user_and_failures_are_logged(h: Harness):
    json_daemon(h)
    channel = UserMessages(h, "alice")
    try:
        ok = h.enqueue("default", "noop", {}, userId="alice")
        bad = h.enqueue("default", "noop", {"fail": "the disk is full", "permanent": True}, userId="alice")
        anonymous = h.enqueue("default", "noop", {"fail": "nobody's", "permanent": True})
        flaky = h.enqueue("default", "noop", {"failAttempts": 1}, userId="alice")
        for job, state in ((ok, "completed"), (bad, "failed"), (anonymous, "failed"), (flaky, "completed")):
            h.wait_state(job, state, timeout=20)

        rows = wait_for(lambda: len(r := notifications(h, "alice")) >= 3 and r, 10, "alice's notifications")
        assert len(rows) == 3, "one per terminal event, none for the retry"
        by_job = {r["metadata"]["jobId"]: r for r in rows}
        assert by_job[ok]["type"] == "success" and by_job[ok]["title"] == "Job complete"
        assert by_job[bad]["type"] == "error" and "the disk is full" in by_job[bad]["message"]
        assert by_job[flaky]["type"] == "success"
        published = wait_for(lambda: len(n := channel.notifications()) >= 3 and n, 10, "three notifications published")
        assert {p["jobId"] for p in published} == {ok, bad, flaky}
        assert all(p["notification"]["id"] for p in published), "published with the row's id"

        # The API's error_logs holds the failure of a user's job (every NOT NULL column filled);
        # the daemon's worker_errors holds every failure, a job without a user too.
        logs = wait_for(lambda: len(r := h.pg("SELECT correlation_id, user_id, error_code, error_message, request_path, metadata, "
                                               "request_method, id FROM error_logs ORDER BY created_at")) >= 1 and r,
                        10, "error_logs rows")
        assert len(logs) == 1, logs
        row = logs[0]
        assert row[0] == bad and row[1] == "alice" and row[2] == "JOB_FAILED" and row[3] == "the disk is full"
        assert row[4] == "job:noop" and row[5]["queue"] == "default" and row[5]["attempt"] == 1 and row[6] == "JOB"
        own = wait_for(lambda: len(r := h.pg("SELECT correlation_id, user_id, job_type, error_message, id FROM worker_errors")) >= 2
                       and r, 10, "worker_errors rows")
        by_id = {r[0]: r for r in own}
        assert set(by_id) == {bad, anonymous} and by_id[anonymous][1] is None and by_id[anonymous][3] == "nobody's"
        assert by_id[bad][4] == row[7], "one id for the failure in both tables"
    finally:
        channel.close()


def test_webhooks_are_signed_retried_and_never_hold_up_the_job(h: Harness, receiver):
    receiver.fail_first = 2
    json_daemon(h, webhooks=webhooks(receiver, events=["completed", "job:failed"]))
    ok = h.enqueue("default", "noop", {}, userId="bob")
    state = h.wait_state(ok, "completed", timeout=20)
    finished = parse_time(state["finishedAt"]).timestamp()

    delivery = wait_for(lambda: receiver.deliveries("job:completed"), 20, "the completed delivery")[0]
    assert len(receiver.failed) == 2, "two 500s, then delivered"
    accepted_at = receiver.accepted[0]["at"]
    assert accepted_at - finished >= 1.5, "retries came after the job had completed (1 s then 2 s backoff)"
    assert delivery["event"] == "job:completed" and delivery["outcome"] == "completed"
    assert delivery["job"]["id"] == ok and delivery["job"]["userId"] == "bob" and delivery["job"]["type"] == "noop"
    headers = receiver.accepted[0]["headers"]
    assert headers["x-medianest-event"] == "job:completed"
    assert headers["x-medianest-signature"].startswith("sha256=")
    assert receiver.refused == [], [r["reason"] for r in receiver.refused]

    bad = h.enqueue("default", "noop", {"fail": "nope", "permanent": True})
    h.wait_state(bad, "failed", timeout=20)
    failed = wait_for(lambda: receiver.deliveries("job:failed"), 15, "the failed delivery")[0]
    assert failed["job"]["error"] == "nope"
    cancelled_or_retrying = h.enqueue("default", "noop", {"failAttempts": 1})
    h.wait_state(cancelled_or_retrying, "completed", timeout=20)
    wait_for(lambda: len(receiver.deliveries("job:completed")) == 2, 15, "the second completed delivery")
    time.sleep(1)
    assert receiver.deliveries("job:retrying") == [], "retrying is not among the selected events"


def test_the_receiver_refuses_replays_and_forgeries(h: Harness, receiver):
    receiver.tolerance = 2
    json_daemon(h, webhooks=webhooks(receiver))
    job = h.enqueue("default", "noop", {})
    h.wait_state(job, "completed", timeout=20)
    wait_for(lambda: receiver.deliveries(), 15, "a delivery")
    original = receiver.accepted[0]

    def post(body: bytes, headers: dict) -> int:
        req = urllib.request.Request(receiver.url, data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status
        except urllib.error.HTTPError as e:
            return e.code

    keep = {k: v for k, v in original["headers"].items() if k.startswith("x-medianest") or k == "content-type"}
    time.sleep(2.5)
    assert post(original["body"], keep) == 401, "the captured delivery replayed later is refused"
    assert receiver.refused[-1]["reason"] == "timestamp too old"

    fresh = str(int(time.time()))
    assert post(original["body"] + b" ", {**keep, "x-medianest-timestamp": fresh}) == 401
    assert receiver.refused[-1]["reason"] == "bad signature", "a changed timestamp breaks the signature"
    old = str(int(time.time()) - 600)
    assert post(original["body"], {**keep, "x-medianest-timestamp": old,
                                   "x-medianest-signature": sign(WEBHOOK_SECRET, old, original["body"])}) == 401
    assert receiver.refused[-1]["reason"] == "timestamp too old", "even correctly signed, an old timestamp is refused"
    assert post(original["body"], {**keep, "x-medianest-timestamp": fresh,
                                   "x-medianest-signature": sign(WEBHOOK_SECRET, fresh, original["body"])}) == 200


def test_mail_goes_through_starttls_with_auth(h: Harness, smtp):
    json_daemon(h, smtp={"host": "127.0.0.1", "port": smtp.port, "username": SMTP_USER, "password": SMTP_PASSWORD,
                         "from": "MediaNest <medianest@example.com>", "ca_file": str(smtp.cert)},
                notifications={"mail": {"to": ["ops@example.com"], "events": ["failed"]}})
    ok = h.enqueue("default", "noop", {})
    bad = h.enqueue("default", "noop", {"fail": "ffmpeg crashed\n.\nQUIT", "permanent": True}, userId="carol")
    h.wait_state(ok, "completed", timeout=20)
    h.wait_state(bad, "failed", timeout=20)

    message = wait_for(lambda: smtp.messages, 20, "a mail")[0]
    assert message["tls"], "sent after STARTTLS"
    assert message["authenticated"]
    assert smtp.auth_attempts and all(a["tls"] and a["ok"] for a in smtp.auth_attempts)
    assert message["mail_from"] == "medianest@example.com" and message["rcpt_tos"] == ["ops@example.com"]
    mail = message["message"]
    assert bad in mail["Subject"] and "failed" in mail["Subject"]
    body = mail.get_content().replace("\r\n", "\n")
    assert "ffmpeg crashed" in body and "carol" in body
    assert "\n.\nQUIT\n" in body and "Payload:" in body, "a lone dot in the text did not end the message early"
    time.sleep(1)
    assert len(smtp.messages) == 1, "only the selected event is mailed"


def test_tokens_and_passwords_never_reach_logs_errors_or_records(h: Harness, plex, smtp):
    # Plex refuses the token the daemon has; the mail server refuses the password.
    wrong_token = PLEX_TOKEN + "-revoked"
    wrong_password = SMTP_PASSWORD + "-old"
    d = json_daemon(h, plex=plex_config(plex, h, token=wrong_token),
                    smtp={"host": "127.0.0.1", "port": smtp.port, "username": SMTP_USER, "password": wrong_password,
                          "from": "medianest@example.com", "ca_file": str(smtp.cert)},
                    notifications={"mail": {"to": ["ops@example.com"], "events": ["*"]}})
    job = h.enqueue("default", "plex.scan", {}, userId="dave")
    state = h.wait_state(job, "failed", timeout=20)
    assert "401" in state["error"] and "token" in state["error"], state
    assert state["attempt"] == "1", "a refused token is not retried"
    wait_for(lambda: [a for a in smtp.auth_attempts if not a["ok"]], 20, "the refused login")
    wait_for(lambda: any("mail not sent" in (l.get("msg") or "") for l in d.lines()), 60, "the mail failure logged")
    failure = next(l for l in d.lines() if "mail not sent" in (l.get("msg") or ""))
    assert "refused the login" in failure["error"], failure
    h.enqueue("default", "service.health", {})
    wait_for(lambda: h.pg("SELECT 1 FROM service_status WHERE service_name = 'plex'"), 20, "the health row")
    wait_for(lambda: h.pg("SELECT 1 FROM error_logs"), 10, "the error log row")

    # The daemon did use the secrets...
    assert plex.calls()[0]["headers"]["x-plex-token"] == wrong_token
    # ...and wrote them nowhere.
    texts = {
        "daemon logs": all_log_text(h),
        "job hashes": json.dumps([h.r.hgetall(k) for k in h.r.scan_iter(h.key("job", "*"))]),
        "health hashes": json.dumps([h.r.hgetall(k) for k in h.r.scan_iter(h.key("health", "*"))]),
        "events": json.dumps([e for _, e in h.event_log()]),
        "jobs table": json.dumps(h.pg("SELECT error, result::text, payload::text FROM jobs")),
        "error_logs": json.dumps(h.pg("SELECT error_message, stack_trace, metadata::text FROM error_logs")),
        "notifications": json.dumps(h.pg("SELECT message, metadata::text FROM notifications")),
        "worker_errors": json.dumps(h.pg("SELECT error_message, stack_trace, metadata::text FROM worker_errors")),
        "service_status": json.dumps(h.pg("SELECT details::text FROM worker_service_checks")),
        "dashboard": json.dumps([h.r.get(k) for k in h.r.scan_iter("status:*")]),
    }
    assert "token" in texts["daemon logs"]
    for where, text in texts.items():
        for secret in (wrong_token, PLEX_TOKEN, wrong_password, SMTP_PASSWORD):
            assert secret not in text, f"a secret appears in the {where}"
    assert "plexTOKEN" not in texts["daemon logs"] and "smtpPASS" not in texts["daemon logs"]


def test_a_bad_webhook_section_is_refused_before_anything_starts(h: Harness, receiver):
    # Like every key of jobs.yml (contract section 7): refused with the file, the key and what is wrong; exit 78.
    settings = h.config("bad-webhooks", webhooks=[{"url": receiver.url, "secret": "short-secret"}])
    config = h.write_config("bad-webhooks", text=json.dumps(settings))  # JSON is YAML
    checked = h.cli("check-config", config=config)
    assert checked.returncode == 78, checked
    assert "webhooks[0].secret" in checked.stderr and "at least 16 characters" in checked.stderr, checked.stderr
    assert "short-secret" not in checked.stderr, "the secret itself is not echoed"
    run = subprocess.run([str(daemon_binary()), "run", "--config", str(config)], capture_output=True, text=True,
                         timeout=30, stdin=subprocess.DEVNULL)
    assert run.returncode == 78, run
    assert "webhooks[0].secret" in run.stderr
    assert receiver.accepted == [] and receiver.refused == []
