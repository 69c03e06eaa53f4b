"""Subscriptions (contract section 12): a feed followed with `ctl sub`, new entries downloaded once,
keep-last retention with its sidecars, Plex rescans and the audit trail, protection; checks fired
once per tick across a leader's SIGKILL; subscriptions from jobs.yml; a failing source."""

from __future__ import annotations

import collections
import json
import signal
import time
from email.utils import formatdate
from pathlib import Path

import pytest

from harness import Harness, wait_for
from integrations_support import json_daemon, library_root, plex, plex_config  # noqa: F401 (fixtures)
from ops_support import ctl, leader_daemon, log_lines
from youtube_support import YOUTUBE_QUEUE, media, media_root, media_server  # noqa: F401 (fixtures)

DAY = 86400


def pub(days_ago: float) -> str:
    return formatdate(time.time() - days_ago * DAY, usegmt=True)


def feed_item(media, n: int, days_ago: float) -> tuple:
    return (f"Clip number {n}", media.url("media/one.mp4"), f"item-{n}", pub(days_ago))


def sub_daemon(h: Harness, name: str | None = None, **overrides):
    queues = {"youtube": dict(YOUTUBE_QUEUE, concurrency=3), "default": {"concurrency": 2}}
    return json_daemon(h, name, queues=queues, youtube={"allowed_hosts": ["127.0.0.1"]}, **overrides)


def subscription(h: Harness, name: str) -> dict | None:
    rows = h.pg("SELECT id, name, url, enabled, last_checked_at, last_error, defined_in, keep_last, check_every "
                "FROM subscriptions WHERE name = %s", (name,))
    if not rows:
        return None
    keys = ["id", "name", "url", "enabled", "last_checked_at", "last_error", "defined_in", "keep_last", "check_every"]
    return dict(zip(keys, rows[0]))


def items(h: Harness, sub_id: str) -> dict[str, dict]:
    rows = h.pg("SELECT video_key, state, path, sidecars, protected, published_at, job_id, reason "
                "FROM subscription_items WHERE subscription_id = %s", (sub_id,))
    return {r[0]: {"state": r[1], "path": r[2], "sidecars": r[3], "protected": r[4], "published_at": r[5],
                   "job_id": r[6], "reason": r[7]} for r in rows}


def wait_items(h: Harness, sub_id: str, expected: dict[str, str], timeout: float = 120) -> dict[str, dict]:
    def check():
        got = items(h, sub_id)
        states = {k: v["state"] for k, v in got.items()}
        return got if all(states.get(k) == s for k, s in expected.items()) else None
    return wait_for(check, timeout, f"items {expected}")


def checked_events(h: Harness, sub_id: str) -> list[dict]:
    return [e for e in h.events(event="subscription:checked") if e.get("subscriptionId") == sub_id]


def sub_ctl(h: Harness, d, *args: str):
    out = ctl(h, d, "sub", *args)
    assert out.returncode == 0, out.stderr
    return out


@pytest.mark.timeout(300)
def test_a_feed_is_followed_new_entries_download_once_and_keep_last_removes_the_oldest(h: Harness, media, plex):
    d = sub_daemon(h, plex=plex_config(plex, h))
    feed = media.add_feed("sub.xml", "Sub Channel", [feed_item(media, n, days_ago=10 - n) for n in (1, 2, 3)])
    out = sub_ctl(h, d, "add", feed, "--name", "clips", "--keep-last", "3", "--every", "1d", "--user", "user-9")
    assert "clips added" in out.stdout
    sub = subscription(h, "clips")
    assert sub and sub["enabled"] and sub["keep_last"] == 3 and sub["check_every"] == DAY and sub["defined_in"] is None

    # The first check (enqueued by add) takes the three entries.
    got = wait_items(h, sub["id"], {f"generic:item-{n}": "downloaded" for n in (1, 2, 3)})
    for n in (1, 2, 3):
        it = got[f"generic:item-{n}"]
        assert it["path"] and Path(it["path"]).is_file() and f"[item-{n}]" in it["path"]
        assert it["published_at"] is not None
        assert any(s.endswith(".nfo") for s in it["sidecars"]) and all(Path(s).exists() for s in it["sidecars"])
        job = h.job(it["job_id"])
        assert job["type"] == "youtube.download" and job["userId"] == "user-9" and job["state"] == "completed"
    first = wait_for(lambda: checked_events(h, sub["id"]), 20, "subscription:checked")
    assert first[0]["found"] == 3 and first[0]["queued"] == 3 and first[0]["removed"] == 0
    assert subscription(h, "clips")["last_checked_at"] is not None

    # Two new entries: a check downloads only those two; a check run again doubles nothing.
    media.add_feed("sub.xml", "Sub Channel", [feed_item(media, n, days_ago=10 - n) for n in (1, 2, 3, 4, 5)])
    sub_ctl(h, d, "check", "clips")
    got = wait_items(h, sub["id"], {f"generic:item-{n}": "downloaded" for n in (1, 2, 3, 4, 5)})
    assert len(got) == 5
    starts = collections.Counter(e["jobId"] for e in h.events(event="youtube:started"))
    assert all(n == 1 for n in starts.values()), starts
    assert len([j for j in starts if j.startswith("subscription:")]) == 5

    # keep_last 3: the next check removes the two oldest with their sidecars, audits it, rescans Plex.
    oldest = {n: got[f"generic:item-{n}"] for n in (1, 2)}
    # A file the daemon did not put there, beside them, named like a sidecar of the oldest.
    foreign = Path(oldest[1]["path"]).with_suffix(".mine.txt")
    foreign.write_text("not the daemon's")
    refreshes_before = len(plex.calls(path_contains="/refresh"))
    sub_ctl(h, d, "check", "clips")
    got = wait_items(h, sub["id"], {"generic:item-1": "removed", "generic:item-2": "removed",
                                    "generic:item-3": "downloaded", "generic:item-5": "downloaded"}, timeout=30)
    for it in oldest.values():
        assert not Path(it["path"]).exists()
        assert not any(Path(s).exists() for s in it["sidecars"])
    for n in (3, 4, 5):
        assert Path(got[f"generic:item-{n}"]["path"]).is_file()
    assert foreign.read_text() == "not the daemon's", "retention touches only the files its download wrote"
    assert "beyond keep_last 3" in got["generic:item-1"]["reason"]
    wait_for(lambda: len(plex.calls(path_contains="/refresh")) > refreshes_before, 30, "a Plex rescan of the folder")
    audit = wait_for(lambda: h.pg("SELECT actor, action, target FROM audit WHERE action = 'subscription.remove'"), 15,
                     "audit rows")
    assert len(audit) == 2 and all(a[0] == "subscription clips" for a in audit)
    ev = wait_for(lambda: [e for e in checked_events(h, sub["id"]) if e["removed"] == 2], 20, "a check that removed two")
    assert ev[0]["found"] == 5 and ev[0]["queued"] == 0

    # A protected video stays past keep_last.
    sub_ctl(h, d, "protect", "clips", "generic:item-3")
    media.add_feed("sub.xml", "Sub Channel", [feed_item(media, n, days_ago=10 - n) for n in (1, 2, 3, 4, 5, 6)])
    sub_ctl(h, d, "check", "clips")
    wait_items(h, sub["id"], {"generic:item-6": "downloaded"})
    sub_ctl(h, d, "check", "clips")
    wait_for(lambda: len(checked_events(h, sub["id"])) >= 5, 30, "the fifth check")
    got = items(h, sub["id"])
    assert got["generic:item-3"]["state"] == "downloaded" and got["generic:item-3"]["protected"]
    assert Path(got["generic:item-3"]["path"]).is_file()
    assert [k for k, v in got.items() if v["state"] == "removed"] == ["generic:item-1", "generic:item-2"] or \
        sorted(k for k, v in got.items() if v["state"] == "removed") == ["generic:item-1", "generic:item-2"]

    listing = json.loads(sub_ctl(h, d, "list", "--json").stdout)["subscriptions"]
    assert listing[0]["name"] == "clips" and listing[0]["items"]["downloaded"] == 4 and listing[0]["items"]["removed"] == 2
    assert "clips" in sub_ctl(h, d, "list").stdout


@pytest.mark.timeout(200)
def test_two_daemons_check_each_tick_once_through_a_leader_sigkill(h: Harness, media):
    feed = media.add_feed("tick.xml", "Tick", [feed_item(media, 1, days_ago=1)])
    subs = {"ticking": {"url": feed, "check_every": "2s", "backfill": 1}}
    a = sub_daemon(h, "a", subscriptions=subs)
    b = sub_daemon(h, "b", subscriptions=subs)
    sub = wait_for(lambda: subscription(h, "ticking"), 15, "the subscription from jobs.yml")
    prefix = f"subscription:{sub['id']}:"

    def ticks() -> list[int]:
        """Ticks whose check completed, one entry per job:completed. (A check running on the killed
        leader is started again by the survivor: at least once to start, exactly once to completion.)"""
        out = []
        for e in h.events(event="job:completed"):
            job = e.get("jobId", "")
            if job.startswith(prefix) and job[len(prefix):].isdigit():
                out.append(int(job[len(prefix):]))
        return out

    def fired_ticks() -> list[int]:
        """Ticks the leaders logged as enqueued, every run of both daemons."""
        return [int(line["jobId"][len(prefix):]) for line in log_lines(h, "subscription check enqueued")
                if line["jobId"].startswith(prefix) and line["jobId"][len(prefix):].isdigit()]

    wait_for(lambda: len(ticks()) >= 3, 20, "three ticks")
    leader = leader_daemon(h)
    assert leader is not None
    killed_at = time.time() * 1000
    leader.kill()  # SIGKILL
    wait_for(lambda: len([t for t in ticks() if t > killed_at]) >= 3, 30, "three ticks after the leader died")
    started = ticks()
    repeated = {t: n for t, n in collections.Counter(started).items() if n > 1}
    assert not repeated, f"ticks checked to completion more than once: {repeated}"
    logged = collections.Counter(fired_ticks())
    assert all(n == 1 for n in logged.values()), f"ticks enqueued twice by the leaders: {logged}"
    ordered = sorted(started)
    gaps = [y - x for x, y in zip(ordered, ordered[1:])]
    assert all(g % 2000 == 0 for g in gaps), f"ticks are 2 s apart: {ordered}"
    assert max(gaps) <= 3 * 2000 + 2000, f"the takeover folds at most the ticks of one lease: {ordered}"
    # The entry was downloaded once, whatever the number of checks.
    wait_items(h, sub["id"], {"generic:item-1": "downloaded"})
    assert len([e for e in h.events(event="youtube:started") if e["jobId"].startswith(prefix)]) == 1
    # Every check ends: one subscription:checked per started check.
    wait_for(lambda: len({e["jobId"] for e in checked_events(h, sub["id"])}) >= len(set(started)), 20, "every check done")

    # The cluster down for several intervals: the missed ticks are one check when it is back.
    survivor = b if leader is a else a
    assert survivor.stop() == 0
    last_before = max(fired_ticks())
    time.sleep(7)
    survivor.start()

    def enqueued_since_restart() -> list[dict]:
        return [line for line in survivor.lines() if line.get("msg") == "subscription check enqueued"
                and line.get("jobId", "").startswith(prefix) and line["jobId"][len(prefix):].isdigit()]

    fired = wait_for(lambda: len(enqueued_since_restart()) >= 2 and enqueued_since_restart(), 20, "checks after the restart")
    first_tick = int(fired[0]["jobId"][len(prefix):])
    assert first_tick - last_before >= 3 * 2000, f"the first check after the restart is for a tick 3+ intervals on: {fired[0]}"
    assert int(fired[0].get("missedTicks", 0)) >= 2, f"the missed ticks were folded into it: {fired[0]}"
    later = [int(line["jobId"][len(prefix):]) for line in fired]
    assert all(y - x == 2000 for x, y in zip(later, later[1:])), f"then every tick: {later}"
    assert not {t: n for t, n in collections.Counter(ticks()).items() if n > 1}, "no tick checked to completion twice"


@pytest.mark.timeout(200)
def test_a_subscription_of_jobs_yml_appears_and_is_disabled_when_removed_from_it(h: Harness, media):
    feed = media.add_feed("file.xml", "File Feed", [feed_item(media, 1, days_ago=2), feed_item(media, 2, days_ago=1)])
    d = sub_daemon(h, "d1", subscriptions={"from-file": {"url": feed, "check_every": "1d", "backfill": 1, "quality": "best"}})
    sub = wait_for(lambda: subscription(h, "from-file"), 15, "the subscription from jobs.yml")
    assert sub["enabled"] and sub["defined_in"] == "jobs.yml"
    # The first check runs at once; backfill 1 takes the newest entry only.
    got = wait_items(h, sub["id"], {"generic:item-2": "downloaded", "generic:item-1": "skipped"})
    assert "backfill" in got["generic:item-1"]["reason"]
    path = Path(got["generic:item-2"]["path"])
    assert path.is_file()

    refused = ctl(h, d, "sub", "remove", "from-file")
    assert refused.returncode == 1 and "jobs.yml" in refused.stderr

    # Gone from the file and reloaded: disabled, its items and files kept.
    settings = dict(d.settings)
    settings.pop("subscriptions")
    d.config.write_text(json.dumps(settings, indent=1) + "\n")
    d.signal(signal.SIGHUP)
    wait_for(lambda: subscription(h, "from-file")["enabled"] is False, 15, "the subscription disabled")
    assert path.is_file() and items(h, sub["id"])["generic:item-2"]["state"] == "downloaded"
    assert "disabled" in ctl(h, d, "sub", "check", "from-file").stderr

    # Back in the file: enabled again, same id, nothing downloaded twice.
    d.config.write_text(json.dumps(d.settings, indent=1) + "\n")
    d.signal(signal.SIGHUP)
    wait_for(lambda: subscription(h, "from-file")["enabled"] is True, 15, "enabled again")
    assert subscription(h, "from-file")["id"] == sub["id"]


@pytest.mark.timeout(200)
def test_a_source_that_404s_sets_last_error_and_the_other_subscription_is_checked(h: Harness, media):
    d = sub_daemon(h)
    good = media.add_feed("good.xml", "Good", [feed_item(media, 7, days_ago=1)])
    sub_ctl(h, d, "add", media.url("feed/missing.xml"), "--name", "broken", "--every", "1d")
    sub_ctl(h, d, "add", good, "--name", "fine", "--every", "1d")
    broken = subscription(h, "broken")
    wait_for(lambda: (subscription(h, "broken") or {}).get("last_error"), 60, "last_error on the broken one")
    err = subscription(h, "broken")["last_error"]
    assert "404" in err or "not found" in err.lower(), err
    job = h.wait_state(f"subscription:{broken['id']}:first", "failed", timeout=30)
    assert job["attempt"] == "1", "a failing source is not retried before the next interval"
    fine = subscription(h, "fine")
    wait_items(h, fine["id"], {"generic:item-7": "downloaded"})
    assert subscription(h, "fine")["last_error"] is None

    # The control stream asks for a check as the API would; the source is fixed meanwhile.
    media.add_feed("missing.xml", "Now here", [feed_item(media, 8, days_ago=1)])
    entry = h.control("check", subscription="broken")
    h.wait_state(f"subscription:{broken['id']}:control:{entry}", "completed", timeout=60)
    wait_items(h, broken["id"], {"generic:item-8": "downloaded"})
    assert subscription(h, "broken")["last_error"] is None

    # Bad requests are refused with a reason and change nothing.
    for args, words in [(("add", good, "--name", "fine"), "exists already"), (("add", good, "--every", "soon"), "every"),
                        (("add", "ftp://x/y"), "http"), (("add", good, "--quality", "4k"), "quality"),
                        (("protect", "fine", "generic:nope"), "no item"), (("check", "nobody"), "no subscription")]:
        out = ctl(h, d, "sub", *args)
        assert out.returncode == 1 and words in out.stderr, (args, out.stderr)
    assert len(h.pg("SELECT 1 FROM subscriptions")) == 2
    removed = sub_ctl(h, d, "remove", "fine")
    assert "files stay" in removed.stdout and subscription(h, "fine") is None
    assert Path(items(h, broken["id"])["generic:item-8"]["path"]).is_file()
