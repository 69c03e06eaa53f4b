"""service.health: service_status rows and P:health:<service> hashes."""

from __future__ import annotations

import json

from harness import Harness, wait_for
from integrations_support import json_daemon, overseerr, plex, plex_config  # noqa: F401 (fixtures)
from test_integrations_overseerr import overseerr_config


def status_rows(h: Harness) -> dict[str, dict]:
    # The API's row (status, response time, uptime) beside the daemon's counts and details.
    rows = h.pg("SELECT s.service_name, s.status, s.response_time_ms, s.uptime_percentage, w.checks_total, w.checks_up, "
                "w.details FROM service_status s JOIN worker_service_checks w USING (service_name)")
    cols = ("service", "status", "ms", "uptime", "total", "up", "details")
    return {r[0]: dict(zip(cols, r)) for r in rows}


def test_health_checks_every_dependency_and_keeps_uptime(h: Harness, plex, overseerr):
    json_daemon(h, plex=plex_config(plex, h), overseerr=overseerr_config(overseerr))
    job = h.enqueue("default", "service.health", {})
    state = h.wait_state(job, "completed", timeout=30)
    services = json.loads(state["result"])["services"]
    expected = {"plex", "overseerr", "redis", "postgres", "yt-dlp", "disk:library", "disk:temp"}
    assert set(services) == expected, services
    for name in ("plex", "overseerr", "redis", "postgres", "disk:library", "disk:temp"):
        assert services[name] == "up", services
    assert services["yt-dlp"] in ("up", "degraded"), services

    rows = wait_for(lambda: len(r := status_rows(h)) == len(expected) and r, 10, "service_status rows")
    assert rows["plex"]["status"] == "up" and rows["plex"]["ms"] is not None and float(rows["plex"]["uptime"]) == 100.0
    assert rows["postgres"]["details"]["version"].startswith("15")
    assert rows["disk:library"]["details"]["freeBytes"] > 0
    assert rows["yt-dlp"]["details"]["version"], rows["yt-dlp"]
    assert rows["yt-dlp"]["details"]["jsRuntime"] is None or ":" in rows["yt-dlp"]["details"]["jsRuntime"]

    plex_hash = h.r.hgetall(h.key("health", "plex"))
    assert plex_hash["status"] == "up" and int(plex_hash["responseTimeMs"]) >= 0 and plex_hash["checkedAt"], plex_hash
    assert plex_hash.get("circuit") == "closed"
    assert h.r.hgetall(h.key("health", "redis"))["status"] == "up"
    assert h.r.hgetall(h.key("health", "yt-dlp"))["version"] == rows["yt-dlp"]["details"]["version"]

    # Plex goes down: the next check says so and the uptime halves; the job still completes.
    plex.down = True
    job = h.enqueue("default", "service.health", {})
    state = h.wait_state(job, "completed", timeout=30)
    assert json.loads(state["result"])["services"]["plex"] == "down"
    row = wait_for(lambda: (r := status_rows(h)["plex"]) and r["total"] == 2 and r, 10, "the second plex check")
    assert row["status"] == "down" and float(row["uptime"]) == 50.0 and row["up"] == 1, row
    assert "503" in row["details"]["message"]
    assert h.r.hget(h.key("health", "plex"), "status") == "down"
    assert h.r.hget(h.key("health", "plex"), "message").startswith("Plex answered HTTP 503")

    # The MediaNest dashboard's keys (unprefixed, as the backend reads them).
    dash = json.loads(h.r.get("status:plex"))
    assert dash["name"] == "plex" and dash["displayName"] == "Plex" and dash["status"] == "down", dash
    assert dash["uptime24h"] == 50.0 and dash["uptime30d"] == 50.0 and dash["lastCheck"].endswith("Z"), dash
    assert "503" in dash["message"]
    every = {entry["name"]: entry for entry in json.loads(h.r.get("status:all"))}
    assert set(every) == expected and every["redis"]["status"] == "up" and every["redis"]["responseTime"] >= 0, every
    assert 0 < h.r.ttl("status:plex") <= 3600


def test_unconfigured_services_are_not_checked(h: Harness):
    json_daemon(h)
    job = h.enqueue("default", "service.health", {})
    state = h.wait_state(job, "completed", timeout=30)
    services = json.loads(state["result"])["services"]
    assert "plex" not in services and "overseerr" not in services
    assert services["redis"] == "up" and services["postgres"] == "up"
