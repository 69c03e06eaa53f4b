"""youtube.cookies, extractor_args, plugin_dirs and throttle reach yt-dlp; a video behind a cookie;
YouTube's bot check and HTTP 429 open the cluster-wide `youtube` circuit (contract section 13)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from harness import Harness, wait_for
from integrations_support import all_log_text, metric
from ops_support import ControlClient
from youtube_access_support import BOT_CHECK, CHALLENGE, FORBIDDEN, TOO_MANY, calls_of, has_pair, stand_in
from youtube_support import (enqueue_download, library_files, media, media_root,  # noqa: F401 (fixtures)
                             media_server, wait_row, yt_daemon)


def cookies_file(h: Harness, media, value: str | None = None) -> Path:
    name, wanted = media.required_cookie
    path = h.workdir / "youtube-cookies.txt"
    path.write_text("# Netscape HTTP Cookie File\n"
                    f"127.0.0.1\tFALSE\t/\tFALSE\t0\t{name}\t{value or wanted}\n")
    path.chmod(0o640)
    return path


def everything_stored(h: Harness) -> str:
    """Every Redis value under the test's prefix and every row of every table, as text."""
    parts = []
    for key in h.r.scan_iter(match=h.key("*"), count=500):
        kind = h.r.type(key)
        if kind == "string":
            parts.append(str(h.r.get(key)))
        elif kind == "hash":
            parts.append(json.dumps(h.r.hgetall(key)))
        elif kind == "list":
            parts.append(json.dumps(h.r.lrange(key, 0, -1)))
        elif kind == "set":
            parts.append(json.dumps(sorted(h.r.smembers(key))))
        elif kind == "zset":
            parts.append(json.dumps(h.r.zrange(key, 0, -1)))
        elif kind == "stream":
            parts.append(json.dumps(h.r.xrange(key)))
    tables = h.pg("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
    for (table,) in tables:
        for (text,) in h.pg(f'SELECT t::text FROM "{table}" t'):
            parts.append(text)
    return "\n".join(parts)


def status(d) -> dict:
    client = ControlClient(d.settings["control"]["socket"])
    try:
        answer = client.request("status")
    finally:
        client.close()
    assert answer["ok"], answer
    return answer


def test_settings_reach_yt_dlp_and_the_cookies_copy_is_private_and_removed(h: Harness, media):
    script, calls, _ = stand_in(h.workdir / "standin")
    plugins = h.workdir / "yt-dlp-plugins"
    plugins.mkdir()
    cookies = cookies_file(h, media)
    before = (cookies.read_bytes(), cookies.stat().st_mtime_ns, cookies.stat().st_mode)
    yt_daemon(h, youtube={
        "yt_dlp": str(script), "cookies": str(cookies),
        "extractor_args": {"youtube": {"player_client": ["default", "mweb"]}, "generic": "impersonate"},
        "plugin_dirs": [str(plugins)],
        "throttle": {"sleep_requests": "0.25s", "sleep_interval": "1s", "max_sleep_interval": "2s", "limit_rate": "20M"},
    })
    job, download_id = enqueue_download(h, media.url("media/clip.mp4"))
    h.wait_state(job, "completed", timeout=60)

    runs = [c for c in calls_of(calls) if c["args"] != ["--version"]]
    assert len(runs) == 2, [c["args"][-3:] for c in runs]  # describe, then download
    for run in runs:
        args = run["args"]
        assert has_pair(args, "--extractor-args", "youtube:player_client=default,mweb"), args
        assert has_pair(args, "--extractor-args", "generic:impersonate"), args
        assert has_pair(args, "--plugin-dirs", str(plugins)), args
        assert has_pair(args, "--sleep-requests", "0.25"), args
        assert str(cookies) not in args, "yt-dlp never gets the original file"
        copy = run["cookies"]
        assert copy["mode"] == 0o600 and copy["size"] == len(before[0]), copy
        assert Path(copy["path"]).parent == h.temp / job, copy
        assert not Path(copy["path"]).exists(), "the copy is removed after the run"
    download = runs[1]["args"]
    assert "--load-info-json" in download
    assert has_pair(download, "--sleep-interval", "1") and has_pair(download, "--max-sleep-interval", "2"), download
    assert has_pair(download, "--limit-rate", "20000000"), download
    assert "--sleep-interval" not in runs[0]["args"], "describing a link is not paced like a download"
    assert (cookies.read_bytes(), cookies.stat().st_mtime_ns, cookies.stat().st_mode) == before
    wait_row(h, download_id, "completed")


def test_a_video_behind_a_cookie_needs_youtube_cookies_which_never_leak(h: Harness, media):
    secret = media.required_cookie[1]
    url = media.url("private/clip.mp4")

    # Without cookies: the site's 401 fails the job at once, and the error says what to configure.
    d = yt_daemon(h)
    job, download_id = enqueue_download(h, url)
    state = h.wait_state(job, "failed", timeout=60)
    assert state["attempt"] == "1", state
    assert "sign in" in state["error"] and "youtube.cookies" in state["error"], state["error"]
    assert wait_row(h, download_id, "failed")
    assert media.cookie_headers and all(secret not in c for c in media.cookie_headers)
    d.stop()

    # With them: it downloads; the file is left as it was.
    cookies = cookies_file(h, media)
    before = (cookies.read_bytes(), cookies.stat().st_mtime_ns)
    yt_daemon(h, youtube={"cookies": str(cookies)})
    job, download_id = enqueue_download(h, url)
    state = h.wait_state(job, "completed", timeout=60)
    assert json.loads(state["result"])["size"] > 10_000
    assert any(f.suffix == ".mp4" for f in library_files(h))
    wait_row(h, download_id, "completed")
    assert any(secret in c for c in media.cookie_headers), "yt-dlp sent the cookie"
    assert (cookies.read_bytes(), cookies.stat().st_mtime_ns) == before, "the original cookies file is unchanged"

    # The cookie's value and the file's path appear in no log, hash, event or row.
    time.sleep(1)  # let the records reach PostgreSQL
    logs = all_log_text(h)
    stored = everything_stored(h)
    digest = hashlib.sha256(secret.encode()).hexdigest()
    for text, where in ((logs, "the daemons' logs"), (stored, "Redis or PostgreSQL")):
        assert secret not in text, f"the cookie's value is in {where}"
        assert digest not in text
        assert str(cookies) not in text, f"the cookies file's path is in {where}"
    assert not list(h.temp.rglob("cookies-*")), "no copy is left behind"


def test_a_bad_cookies_file_is_refused_at_load(h: Harness, media):
    bad = h.workdir / "cookies.txt"
    bad.write_text("SID=not-netscape-secret\n")
    r = h.cli("check-config", config=h.write_config("bad", youtube={"cookies": str(bad)}))
    assert r.returncode == 78, (r.returncode, r.stdout, r.stderr)
    assert "youtube.cookies" in r.stderr and "Netscape" in r.stderr, r.stderr
    assert "not-netscape-secret" not in r.stdout + r.stderr


@pytest.mark.timeout(240)
@pytest.mark.parametrize("refusal", [BOT_CHECK, TOO_MANY], ids=["bot-check", "http-429"])
def test_youtube_pushing_back_opens_the_circuit_on_every_host_and_the_job_waits(h: Harness, media, refusal: str):
    script, calls, flag = stand_in(h.workdir / "standin", refusal)
    flag.touch()
    d1 = yt_daemon(h, youtube={"yt_dlp": str(script)})
    d2 = yt_daemon(h, youtube={"yt_dlp": str(script)})
    job, download_id = enqueue_download(h, media.url("media/one.mp4"))

    health = h.key("health", "youtube")
    wait_for(lambda: h.r.hget(health, "circuit") == "open", 30, "the youtube circuit to open")
    # The stage is reported as the attempt ends; the error is written by the transition that follows.
    waiting = wait_for(lambda: (s := h.job(job)).get("stage") == "waiting for youtube" and s.get("error") and s, 20,
                       "the job to wait with its error")
    assert waiting["state"] in ("scheduled", "queued", "active"), waiting
    assert "youtube.cookies" in waiting["error"] and "PO-token provider" in waiting["error"], waiting["error"]
    assert "youtube.throttle" in waiting["error"]
    assert h.r.hget(health, "reason") == ("bot_check" if refusal is BOT_CHECK else "rate_limited")

    # Both daemons see it: the status and the gauge.
    for d in (d1, d2):
        wait_for(lambda d=d: status(d)["circuits"].get("youtube") in ("open", "half-open"), 10, f"{d.name}'s status")
        assert metric(h, d, "medianest_circuit_open", service="youtube") in (0.0, 1.0)
    wait_for(lambda: any(metric(h, d, "medianest_circuit_open", service="youtube") == 1.0 for d in (d1, d2)), 10,
             "medianest_circuit_open{youtube} 1")
    out = h.cli("ctl", "status", config=d2.config)
    assert out.returncode == 0 and "youtube" in out.stdout, out.stdout

    # Trials after the wait are refused too; the wait grows and no attempt is used.
    wait_for(lambda: len([c for c in calls_of(calls) if c["args"] != ["--version"]]) >= 3, 60, "two trials")
    assert h.job(job)["state"] != "failed"
    assert int(h.job(job).get("attempt") or 0) <= 1, h.job(job)
    waits = [e for e in h.events(job, "youtube:failed") + h.events(job, "job:retrying") if e.get("attemptCounted") is False]
    assert waits, [e["event"] for e in h.events(job)]
    assert float(h.r.hget(health, "openFor")) > 5, "a failed trial doubles the wait"
    logs = [line for d in (d1, d2) for line in d.lines() if "youtube circuit open" in str(line.get("msg"))]
    assert logs, "the opening is logged"

    # YouTube lets us through again: the next trial completes the job and closes the circuit.
    flag.unlink()
    state = h.wait_state(job, "completed", timeout=120)
    assert int(state["attempt"]) <= 1, state
    wait_row(h, download_id, "completed")
    assert h.r.hget(health, "circuit") == "closed"
    wait_for(lambda: status(d1)["circuits"].get("youtube") == "closed", 10, "the status to show it closed")


def old_yt_dlp(folder: Path, version: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "yt-dlp"
    script.write_text(f"#!/bin/sh\nif [ \"$1\" = \"--version\" ]; then echo {version}; exit 0; fi\nexit 1\n")
    script.chmod(0o755)
    return script


def test_a_stale_yt_dlp_is_a_warning_at_start_in_health_status_and_metrics(h: Harness, media):
    script = old_yt_dlp(h.workdir / "old", "2025.01.01")
    d = yt_daemon(h, youtube={"yt_dlp": str(script), "js_runtime": "node"})
    health = h.key("health", "yt-dlp")
    wait_for(lambda: h.r.hget(health, "version") == "2025.01.01", 20, "the start-up check in P:health:yt-dlp")
    fields = h.r.hgetall(health)
    assert fields["status"] == "degraded" and fields["channel"] == "stable", fields
    assert int(fields["ageDays"]) > 600 and "older than 2025.11.12" in fields["message"], fields
    assert fields["jsRuntime"].startswith("node:"), fields
    warned = wait_for(lambda: [l for l in d.lines() if l.get("msg") == "yt-dlp check"], 10, "the start-up log line")
    assert warned[0]["level"] == "warning" and "yt-dlp[default]" in warned[0]["problem"], warned

    answer = status(d)
    assert answer["ytDlp"]["version"] == "2025.01.01" and answer["ytDlp"]["jsRuntime"] == "node", answer["ytDlp"]
    assert "older than" in answer["ytDlp"]["warning"]
    out = h.cli("ctl", "status", config=d.config)
    assert "yt-dlp    2025.01.01" in out.stdout and "WARNING" in out.stdout, out.stdout

    assert metric(h, d, "medianest_ytdlp_info", version="2025.01.01", channel="stable", js_runtime="node") == 1.0
    assert metric(h, d, "medianest_ytdlp_age_seconds") > 600 * 86400
    from harness import http_get
    from test_ops_metrics import promtool
    code, text = http_get(h.metrics_url(d) + "/metrics")
    check = promtool("check", "metrics", stdin=text)
    assert code == 200 and check.returncode == 0, check.stdout + check.stderr


def test_a_current_yt_dlp_with_plugins_is_up_and_service_health_records_it(h: Harness, media):
    plugins = h.workdir / "plugins"
    (plugins / "bgutil-ytdlp-pot-provider" / "yt_dlp_plugins" / "extractor").mkdir(parents=True)
    (plugins / "bgutil-ytdlp-pot-provider" / "yt_dlp_plugins" / "extractor" / "getpot_bgutil.py").write_text("")
    d = yt_daemon(h, youtube={"plugin_dirs": [str(plugins)]})
    job = h.enqueue("default", "service.health", {})
    h.wait_state(job, "completed", timeout=30)
    fields = h.r.hgetall(h.key("health", "yt-dlp"))
    assert fields["status"] == "up", fields
    assert fields["plugins"] == "bgutil-ytdlp-pot-provider", fields
    assert fields["channel"] in ("stable", "nightly") and int(fields["ageDays"]) <= 90, fields
    version = fields["version"]
    assert status(d)["ytDlp"]["version"] == version
    assert metric(h, d, "medianest_ytdlp_info", version=version) == 1.0


def test_a_403_is_tried_once_more_with_fresh_metadata(h: Harness, media):
    script, calls, flag = stand_in(h.workdir / "standin", FORBIDDEN, downloads_only=True, times=1)
    flag.touch()
    yt_daemon(h, youtube={"yt_dlp": str(script)})
    job, download_id = enqueue_download(h, media.url("media/two.mp4"))
    state = h.wait_state(job, "completed", timeout=60)
    assert state["attempt"] == "1", "the fresh try is within the attempt"
    runs = [("download" if "--load-info-json" in c["args"] else "describe") for c in calls_of(calls) if c["args"] != ["--version"]]
    assert runs == ["describe", "download", "describe", "download"], runs
    wait_row(h, download_id, "completed")


def test_a_403_again_with_fresh_metadata_fails_and_says_what_to_do(h: Harness, media):
    script, calls, flag = stand_in(h.workdir / "standin", FORBIDDEN, downloads_only=True)
    flag.touch()
    yt_daemon(h, youtube={"yt_dlp": str(script)})
    job, _ = enqueue_download(h, media.url("media/two.mp4"))
    state = h.wait_state(job, "failed", timeout=60)
    assert state["attempt"] == "1", state
    assert "HTTP 403" in state["error"] and "refused again with fresh metadata" in state["error"], state["error"]
    assert "PO-token provider" in state["error"]
    assert len([c for c in calls_of(calls) if "--load-info-json" in c["args"]]) == 2


def test_a_failed_challenge_names_the_yt_dlp_version_found(h: Harness, media):
    script, _, flag = stand_in(h.workdir / "standin", CHALLENGE)
    flag.touch()
    yt_daemon(h, youtube={"yt_dlp": str(script)})
    job, _ = enqueue_download(h, media.url("media/three.mp4"))
    state = h.wait_state(job, "failed", timeout=60)
    import yt_dlp.version
    assert state["attempt"] == "1", state
    assert state["error"].startswith(
        f"yt-dlp is too old or lacks its JS runtime (version found: {yt_dlp.version.__version__})"), state["error"]
    assert "yt-dlp[default]" in state["error"]
