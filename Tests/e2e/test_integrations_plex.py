"""Plex: path mapping, section lookup, collections, metadata, the circuit breaker while Plex is
down, and a Plex that answers too slowly."""

from __future__ import annotations

import json
import os
import time

import pytest

from fake_plex import FakePlex
from harness import Harness, wait_for
from integrations_support import (PATIENT_QUEUES, PLEX_TOKEN, PNG_1PX, REMOTE_ROOT, json_daemon, library_root,
                                  metric, overseerr, plex, plex_config, write_media)  # noqa: F401 (fixtures)


def test_a_folder_scan_goes_to_the_section_holding_the_mapped_path(h: Harness, plex):
    write_media(h, "Some Channel/clip [a1].mp4")
    d = json_daemon(h, plex=plex_config(plex, h))
    job = h.enqueue("default", "plex.scan", {"path": "Some Channel"})
    state = h.wait_state(job, "completed", timeout=20)

    refreshes = plex.calls("GET", "/refresh")
    assert len(refreshes) == 1, plex.log_tail()
    assert refreshes[0]["path"] == "/library/sections/7/refresh", "the YouTube section (by location), not Movies"
    assert refreshes[0]["query"] == {"path": f"{REMOTE_ROOT}/Some Channel"}, "the local path mapped to the server's"
    result = json.loads(state["result"])
    assert result["section"] == "YouTube" and result["path"] == f"{REMOTE_ROOT}/Some Channel", result

    # Every request carries the token in its header, never in the URL, and asks for JSON.
    for r in plex.calls():
        assert r["headers"].get("x-plex-token") == PLEX_TOKEN
        assert r["headers"].get("accept") == "application/json"
        assert PLEX_TOKEN not in r["raw_query"]

    # Nothing: the whole section.
    job = h.enqueue("default", "plex.scan", {})
    h.wait_state(job, "completed", timeout=20)
    assert plex.calls("GET", "/refresh")[-1]["query"] == {}, "no path: the whole section"
    assert metric(h, d, "medianest_external_requests_total", service="plex", outcome="success") >= 4


def test_redirects_are_not_followed_so_the_token_stays_with_plex(h: Harness, plex):
    other = FakePlex("another-token", sections=[], disk={}).start()
    try:
        plex.redirect_to = other.url + "/library/sections"
        json_daemon(h, plex=plex_config(plex, h), queues=PATIENT_QUEUES)
        job = h.enqueue("default", "plex.scan", {}, maxAttempts=1)
        state = h.wait_state(job, "failed", timeout=20)
        assert "HTTP 302" in state["error"] and "redirect" in state["error"], state
        assert plex.calls(), "Plex was asked"
        assert other.calls() == [], "the redirect was not followed (it would have carried the token)"
    finally:
        other.stop()


def test_a_folder_outside_the_library_is_refused_without_calling_plex(h: Harness, plex):
    json_daemon(h, plex=plex_config(plex, h))
    job = h.enqueue("default", "plex.scan", {"path": "/etc"})
    state = h.wait_state(job, "failed", timeout=20)
    assert "outside the library" in state["error"], state
    assert state["attempt"] == "1", "a refused path is not retried"
    assert plex.calls() == []


def test_the_named_section_is_used_and_an_unknown_one_is_a_clear_error(h: Harness, plex):
    write_media(h, "c/x.mp4")
    first = json_daemon(h, plex=plex_config(plex, h, section="youtube"))
    job = h.enqueue("default", "plex.scan", {"path": "c"})
    h.wait_state(job, "completed", timeout=20)
    assert plex.calls("GET", "/refresh")[-1]["path"] == "/library/sections/7/refresh", "by title, case-insensitively"

    first.stop()
    json_daemon(h, plex=plex_config(plex, h, section="Cartoons"))
    job = h.enqueue("default", "plex.scan", {"path": "c"})
    state = h.wait_state(job, "failed", timeout=20)
    assert "library section 'Cartoons'" in state["error"] and "'YouTube'" in state["error"], state
    assert state["attempt"] == "1", "a missing section is not retried"


def test_publishing_a_file_scans_waits_fills_metadata_and_builds_one_collection(h: Harness, plex):
    a = write_media(h, "Chan/First video [aaa].mp4")
    b = write_media(h, "Chan/Second video [bbb].mp4")
    poster = os.path.join(library_root(h), "Chan", "First video [aaa].png")
    with open(poster, "wb") as f:
        f.write(PNG_1PX)
    plex.scan_delay = 1.5  # Plex lists new files a little after the refresh, as a real scan does
    json_daemon(h, plex=plex_config(plex, h))

    first = h.enqueue("default", "plex.scan", {
        "file": "Chan/First video [aaa].mp4", "collection": "My Playlist", "title": "First video",
        "summary": "The first one.", "date": "20240102", "poster": poster})
    state = h.wait_state(first, "completed", timeout=30)
    result = json.loads(state["result"])
    item = plex.item_for(f"{REMOTE_ROOT}/Chan/First video [aaa].mp4")
    assert item is not None, plex.log_tail()
    assert result["plex"] == "published" and result["plexRatingKey"] == item["ratingKey"], result
    assert item["title"] == "First video", "Plex's file-name title is replaced"
    assert item["summary"] == "The first one."
    assert item["originallyAvailableAt"] == "2024-01-02"
    assert item["poster_bytes"] == len(PNG_1PX) and item["poster_type"] == "image/png"
    assert plex.calls("GET", "/refresh")[0]["query"] == {"path": f"{REMOTE_ROOT}/Chan"}
    polls = plex.calls("GET", "/recentlyAdded")
    assert len(polls) >= 2, "the item was polled for until the scan listed it"

    collection = plex.collection_named("My Playlist")
    assert collection is not None and collection["items"] == [item["ratingKey"]]
    assert result["plexCollectionId"] == collection["ratingKey"]

    # A second file of the same playlist joins the same collection; metadata Plex already has is kept.
    b_remote = f"{REMOTE_ROOT}/Chan/Second video [bbb].mp4"
    plex.scan_delay = 0
    second = h.enqueue("default", "plex.scan", {"file": b, "collection": "My Playlist", "title": "Second video"})
    h.wait_state(second, "completed", timeout=30)
    collection = plex.collection_named("My Playlist")
    b_item = plex.item_for(b_remote)
    assert collection["items"] == [item["ratingKey"], b_item["ratingKey"]]
    assert len(plex.calls("POST", "/library/collections")) == 1, "the collection is made once"
    assert len(plex.calls("PUT", "/items")) == 1

    plex_items_before = len(plex.items)
    with plex.lock:
        plex.items[b_item["ratingKey"]]["title"] = "Curated by hand"
    again = h.enqueue("default", "plex.scan", {"file": b, "collection": "My Playlist", "title": "Second video"})
    h.wait_state(again, "completed", timeout=30)
    assert plex.item_for(b_remote)["title"] == "Curated by hand", "a title set in Plex is not overwritten"
    assert plex.collection_named("My Playlist")["items"] == [item["ratingKey"], b_item["ratingKey"]], "no duplicate member"
    assert len(plex.items) == plex_items_before
    assert a  # the files stay in the library
    assert os.path.exists(a) and os.path.exists(b)


def test_a_file_plex_does_not_list_is_retried_not_lost(h: Harness, plex):
    write_media(h, "late/v.mp4")
    plex.scan_delay = 25  # longer than one attempt waits
    json_daemon(h, plex=plex_config(plex, h), queues=PATIENT_QUEUES)
    job = h.enqueue("default", "plex.scan", {"file": "late/v.mp4"})
    state = h.wait_state(job, "scheduled", timeout=40)
    assert "has not listed v.mp4 yet" in state["error"], state
    plex.scan_delay = 0
    with plex.lock:
        plex.pending_scans = [(0, s, f) for _, s, f in plex.pending_scans]
    h.wait_state(job, "completed", timeout=30)


@pytest.mark.timeout(150)
def test_plex_down_opens_the_breaker_jobs_wait_then_finish_when_it_returns(h: Harness, plex):
    for i in range(3):
        os.makedirs(os.path.join(library_root(h), f"folder{i}"), exist_ok=True)
    d = json_daemon(h, plex=plex_config(plex, h), queues=PATIENT_QUEUES)
    plex.down = True
    jobs = [h.enqueue("default", "plex.scan", {"path": f"folder{i}"}) for i in range(3)]

    # The breaker opens after 5 failures (3 tries per call, 3 jobs at once).
    wait_for(lambda: h.r.hget(h.key("health", "plex"), "circuit") == "open", 30, "the plex breaker to open")
    failures_at_open = len(plex.calls())
    assert 5 <= failures_at_open <= 5 + 3 * 3, f"opened after {failures_at_open} failed requests"

    # Jobs wait, rescheduled, saying what for; none fails.
    waiting = wait_for(lambda: [j for j in jobs if h.job(j).get("stage") == "waiting for plex"], 20,
                       "a job to wait for plex")
    state = h.job(waiting[0])
    assert state["state"] in ("scheduled", "queued", "active"), state
    assert "Plex is unavailable" in state.get("error", ""), state
    assert metric(h, d, "medianest_circuit_open", service="plex") in (0.0, 1.0)

    # While open, Plex is left alone: at most the half-open trial calls reach it.
    time.sleep(3)
    during = len(plex.calls()) - failures_at_open
    assert during <= 2, f"{during} requests reached Plex while its breaker was open"
    assert all(h.job(j)["state"] != "failed" for j in jobs)

    plex.down = False
    h.wait_states(jobs, "completed", timeout=60)
    assert wait_for(lambda: h.r.hget(h.key("health", "plex"), "circuit") == "closed", 10, "the breaker to close")
    assert metric(h, d, "medianest_circuit_open", service="plex") == 0.0
    assert metric(h, d, "medianest_external_requests_total", service="plex", outcome="circuit_open") >= 1
    assert metric(h, d, "medianest_external_requests_total", service="plex", outcome="server_error") >= 5
    logs = [line for line in d.lines() if line.get("msg") == "circuit breaker open"]
    assert logs and logs[0].get("service") == "plex", "the opening is logged"


def test_the_open_circuit_shows_in_the_metric(h: Harness, plex):
    os.makedirs(os.path.join(library_root(h), "f"), exist_ok=True)
    d = json_daemon(h, plex=plex_config(plex, h), queues=PATIENT_QUEUES)
    assert metric(h, d, "medianest_circuit_open", service="plex") == 0.0, "a configured service is listed before any call"
    plex.down = True
    h.enqueue("default", "plex.scan", {"path": "f"})
    h.enqueue("default", "plex.scan", {"path": "f"})
    wait_for(lambda: metric(h, d, "medianest_circuit_open", service="plex") == 1.0, 30, "medianest_circuit_open{plex} 1")


@pytest.mark.timeout(150)
def test_a_plex_that_answers_too_slowly_times_out_and_the_job_retries(h: Harness, plex):
    os.makedirs(os.path.join(library_root(h), "slow"), exist_ok=True)
    json_daemon(h, plex=plex_config(plex, h), queues=PATIENT_QUEUES)
    plex.delay = 13  # longer than the 10 s a Plex request may take
    started = time.monotonic()
    job = h.enqueue("default", "plex.scan", {"path": "slow"})

    # Other work goes on meanwhile.
    other = h.enqueue("default", "noop", {})
    h.wait_state(other, "completed", timeout=5)

    state = h.wait_state(job, "scheduled", timeout=30)
    elapsed = time.monotonic() - started
    assert "did not answer within 10 s" in state["error"], state
    assert 9 <= elapsed <= 25, f"the attempt gave up after {elapsed:.1f}s"
    assert len(plex.calls()) == 1, "a timed-out request is not repeated within the attempt"

    plex.delay = 0
    h.wait_state(job, "completed", timeout=40)


def test_waiting_for_an_open_breaker_uses_up_no_attempts(h: Harness, plex):
    # Two attempts only: if waits counted, the job would fail long before Plex returns.
    os.makedirs(os.path.join(library_root(h), "f"), exist_ok=True)
    strict = {"default": {"concurrency": 2, "max_attempts": 2, "backoff": {"initial": "200ms", "max": "1s"}, "timeout": "60s"}}
    json_daemon(h, plex=plex_config(plex, h), queues=strict)
    plex.down = True
    job = h.enqueue("default", "plex.scan", {"path": "f"})
    wait_for(lambda: len([e for e in h.events(job, "job:retrying") if e.get("attemptCounted") is False]) >= 3, 40,
             "three waits for the open breaker")
    assert h.job(job)["state"] != "failed"
    plex.down = False
    done = h.wait_state(job, "completed", timeout=60)
    assert int(done["attempt"]) <= 2, done


def test_the_breaker_state_shows_in_the_control_status(h: Harness, plex):
    import socket as _socket
    d = json_daemon(h, plex=plex_config(plex, h))
    with _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(d.settings["control"]["socket"])
        s.sendall(b'{"cmd":"status"}\n')
        answer = json.loads(s.makefile().readline())
    assert answer["ok"] and answer["circuits"].get("plex") == "closed", answer
