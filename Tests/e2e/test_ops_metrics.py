"""Metrics (contract section 9): a live scrape that promtool accepts, a real Prometheus server
scraping the daemon with the shipped alert rules, and the Grafana dashboard's queries."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time

import pytest

from harness import Harness, http_get, wait_for
from ops_support import PrometheusServer, repo_file

CONTRACT_SERIES = [
    "medianest_jobs_total", "medianest_job_duration_seconds_bucket", "medianest_job_duration_seconds_sum",
    "medianest_job_duration_seconds_count", "medianest_queue_depth", "medianest_jobs_active",
    "medianest_queue_paused", "medianest_download_bytes_total", "process_cpu_seconds_total",
    "process_resident_memory_bytes", "process_open_fds", "process_start_time_seconds",
    "medianest_filesystem_avail_bytes",
]


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool")
    assert binary, "promtool is not installed (scripts/setup installs Debian's prometheus package)"
    return subprocess.run([binary, *args], input=stdin, capture_output=True, text=True, timeout=60)


def run_some_jobs(h: Harness) -> None:
    ok = [h.enqueue("default", "noop") for _ in range(5)]
    bad = h.enqueue("default", "noop", {"fail": "boom", "permanent": True})
    flaky = h.enqueue("bulk", "noop", {"failAttempts": 1})
    slow = h.enqueue("solo", "sleep", {"seconds": 0.3})
    h.wait_states(ok + [flaky, slow], "completed", timeout=20)
    h.wait_state(bad, "failed")


def test_a_live_scrape_passes_promtool(h: Harness):
    d = h.daemon()
    run_some_jobs(h)
    h.control("pause", queue="solo")
    wait_for(lambda: 'medianest_queue_paused{queue="solo"} 1' in http_get(h.metrics_url(d) + "/metrics")[1], 5, "the pause in the metrics")
    status, text = http_get(h.metrics_url(d) + "/metrics")
    assert status == 200
    check = promtool("check", "metrics", stdin=text)
    assert check.returncode == 0, f"promtool check metrics:\n{check.stdout}{check.stderr}\n--- scrape ---\n{text}"

    # The contract's names, types and labels.
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    assert types["medianest_jobs_total"] == "counter"
    assert types["medianest_job_duration_seconds"] == "histogram"
    for gauge in ("medianest_queue_depth", "medianest_jobs_active", "medianest_queue_paused", "medianest_circuit_open"):
        assert types[gauge] == "gauge", gauge
    assert types["medianest_download_bytes_total"] == "counter"
    assert types["medianest_external_requests_total"] == "counter"
    assert types["process_cpu_seconds_total"] == "counter"
    for outcome in ("completed", "failed", "retried"):
        assert re.search(rf'^medianest_jobs_total\{{queue="[a-z]+",type="noop",outcome="{outcome}"\}} [1-9]', text, re.M), outcome
    # Buckets from a millisecond to hours.
    les = sorted({float(x) for x in re.findall(r'medianest_job_duration_seconds_bucket\{[^}]*le="([0-9.e+-]+)"', text)})
    assert les[0] <= 0.001 and les[-1] >= 3600, les
    assert re.search(r'^medianest_filesystem_avail_bytes\{path="library"\} [1-9]', text, re.M)
    start = float(re.search(r"^process_start_time_seconds (\S+)$", text, re.M).group(1))
    assert abs(start - time.time()) < 120, "process_start_time_seconds is the daemon's start"
    assert http_get(h.metrics_url(d) + "/healthz")[0] == 200


@pytest.mark.timeout(180)
def test_a_real_prometheus_scrapes_the_daemon_and_loads_the_rules(h: Harness, tmp_path):
    rules = repo_file("deploy", "prometheus", "alerts.yml")
    assert promtool("check", "rules", str(rules)).returncode == 0
    unit = promtool("test", "rules", str(repo_file("deploy", "prometheus", "alerts_test.yml")))
    assert unit.returncode == 0, unit.stdout + unit.stderr

    d = h.daemon()
    run_some_jobs(h)
    target = d.settings["metrics"]["listen"]
    prom = PrometheusServer(tmp_path / "prometheus", [target], rules=[rules]).start()
    try:
        wait_for(lambda: [r for r in prom.query('up{job="medianest-worker"}') if r["value"][1] == "1"], 60,
                 "prometheus to scrape the daemon", interval=0.5)
        time.sleep(3)  # a few scrapes

        def present():
            names = set(prom.api("label/__name__/values"))
            return [n for n in CONTRACT_SERIES if n not in names] or True

        missing = wait_for(lambda: present() is True, 20, "the contract's series in prometheus", interval=0.5)
        assert missing is True
        completed = prom.query('sum(medianest_jobs_total{outcome="completed"})')
        assert completed and float(completed[0]["value"][1]) >= 6, completed
        depth = prom.query("medianest_queue_depth")
        assert {r["metric"]["queue"] for r in depth} == {"default", "bulk", "solo"}
        assert prom.query('histogram_quantile(0.5, sum by (le) (rate(medianest_job_duration_seconds_bucket[1m])))') is not None

        # The alert rules are loaded and healthy (evaluated without errors).
        groups = prom.api("rules")["groups"]
        loaded = {r["name"]: r for g in groups for r in g["rules"]}
        for name in ("MedianestWorkerDown", "MedianestQueueBacklog", "MedianestJobFailureRatio",
                     "MedianestCircuitOpen", "MedianestDiskLow"):
            assert name in loaded, sorted(loaded)
        wait_for(lambda: all(r.get("health") == "ok" for g in prom.api("rules")["groups"] for r in g["rules"]), 20,
                 "every rule evaluated without error", interval=0.5)

        # Every query of the Grafana dashboard is valid PromQL against the real series.
        dashboard = json.loads(repo_file("deploy", "grafana", "medianest-worker.json").read_text())
        exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
        assert len(exprs) >= 15
        with_data = 0
        for expr in exprs:
            concrete = expr.replace("$instance", ".*").replace("$__rate_interval", "1m")
            result = prom.query(concrete)
            with_data += bool(result)
        assert with_data >= len(exprs) // 2, f"only {with_data} of {len(exprs)} dashboard queries return data"
    finally:
        prom.stop()
