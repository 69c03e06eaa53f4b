"""jobs.yml: a bad file is refused with exit status 78 and a message that names the key;
check-config masks secrets; migrate is safe to run at once on several hosts."""

from __future__ import annotations

import re
import subprocess

import pytest

from harness import Harness, daemon_binary, daemon_env, deep_merge, to_yaml

EX_CONFIG = 78

BAD_CONFIGS = [
    ("queues.default.concurrency", {"queues": {"default": {"concurrency": "lots"}}}, r"concurrency"),
    ("shutdown_timeout", {"shutdown_timeout": "soon"}, r"shutdown_timeout"),
    ("metrics.listen", {"metrics": {"listen": "nowhere"}}, r"listen"),
    ("redis.url", {"redis": {"url": "ftp://127.0.0.1/"}}, r"redis.*url|url.*redis"),
    ("queue name", {"queues": {"Not A Queue!": {"concurrency": 1}}}, r"queues|Not A Queue!"),
    ("queues.default.backoff", {"queues": {"default": {"backoff": {"initial": "never"}}}}, r"backoff|initial"),
    ("youtube.quality", {"youtube": {"quality": "4320p"}}, r"quality"),
]


@pytest.mark.parametrize("name,override,key", BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_a_bad_jobs_yml_exits_78_naming_the_key(h: Harness, name: str, override: dict, key: str):
    config = h.workdir / "bad.jobs.yml"
    settings = deep_merge(h.config("bad"), override)
    config.write_text(to_yaml(settings) + "\n")
    check_refused(h, config, key)


def test_a_jobs_yml_that_is_not_yaml_exits_78_naming_the_file(h: Harness):
    config = h.workdir / "broken.jobs.yml"
    config.write_text(to_yaml(h.config("broken")) + "\nqueues: [unclosed\n")
    check_refused(h, config, None)


def check_refused(h: Harness, config, key: str | None) -> None:
    run = subprocess.run([str(daemon_binary()), "run", "--config", str(config)],
                         capture_output=True, text=True, timeout=30, env=daemon_env(),
                         stdin=subprocess.DEVNULL)
    output = run.stdout + run.stderr
    assert run.returncode == EX_CONFIG, f"run: exit status {run.returncode}, output:\n{output}"
    assert config.name in output, f"run: the message names the file:\n{output}"
    if key is not None:
        assert re.search(key, output, re.IGNORECASE), f"run: the message names the key ({key}):\n{output}"
    assert not list(h.r.scan_iter(h.prefix + ":*")), "nothing starts before the file is accepted"

    check = h.cli("check-config", config=config)
    output = check.stdout + check.stderr
    assert check.returncode == EX_CONFIG, f"check-config: exit status {check.returncode}, output:\n{output}"
    if key is not None:
        assert re.search(key, output, re.IGNORECASE), f"check-config: the message names the key:\n{output}"


def test_check_config_prints_the_resolved_config_with_secrets_masked(h: Harness):
    config = h.write_config(
        "secrets",
        redis={"url": "redis://:redis-e2e-secret@127.0.0.1:6379/0", "prefix": "${MEDIANEST_E2E_PREFIX}"},
        postgres={"url": "postgres://medianest:pg-e2e-secret@127.0.0.1:5432/medianest"},
        plex={"url": "http://127.0.0.1:32400", "token": "${MEDIANEST_E2E_PLEX_TOKEN}", "section": "YouTube"},
    )
    out = h.cli("check-config", config=config,
                env={"MEDIANEST_E2E_PREFIX": "e2eresolvedprefix", "MEDIANEST_E2E_PLEX_TOKEN": "plex-e2e-secret"})
    output = out.stdout + out.stderr
    assert out.returncode == 0, output
    assert "e2eresolvedprefix" in out.stdout, f"${{VAR}} is resolved:\n{output}"
    for secret in ("redis-e2e-secret", "pg-e2e-secret", "plex-e2e-secret"):
        assert secret not in output, f"{secret} is masked:\n{output}"

    # MEDIANEST_REDIS_URL and MEDIANEST_DATABASE_URL override the file.
    out = h.cli("check-config", config=config,
                env={"MEDIANEST_E2E_PREFIX": "p", "MEDIANEST_E2E_PLEX_TOKEN": "t",
                     "MEDIANEST_REDIS_URL": "redis://127.0.0.1:63999/3",
                     "MEDIANEST_DATABASE_URL": "postgres://medianest@127.0.0.1:63998/overridden"})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "63999" in out.stdout and "63998" in out.stdout, out.stdout


def test_migrate_is_idempotent_and_safe_to_run_at_once(h: Harness):
    config = h.write_config("migrate")
    cmd = [str(daemon_binary()), "migrate", "--config", str(config)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=daemon_env(), stdin=subprocess.DEVNULL) for _ in range(3)]
    for p in procs:
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0, out
    again = h.cli("migrate", config=config)
    assert again.returncode == 0, again.stdout + again.stderr

    columns = {row[0] for row in h.pg(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'jobs'")}
    for column in ("id", "queue", "type", "payload", "user_id", "state", "attempt", "max_attempts",
                   "error", "result", "created_at", "started_at", "finished_at", "worker"):
        assert column in columns, f"jobs.{column} exists: {sorted(columns)}"
