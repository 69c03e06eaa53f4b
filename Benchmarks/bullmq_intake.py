#!/usr/bin/env python3
"""The BullMQ intake beside our own streams, side by side in one run (figures, not a test).

    python3 Benchmarks/bullmq_intake.py [--bin .build/release/medianest-worker] [--jobs 20000] [--rounds 3]

Each round, on the Redis and PostgreSQL of `scripts/services start`, with a fresh key prefix and
database and queues.default at concurrency 64, records on:
  streams  N no-op envelopes XADDed to P:queue:default before the daemon starts; timed from its
           `ready` line until every entry is delivered and acknowledged (XINFO GROUPS).
  bullmq   N no-op jobs added with PyPI bullmq's addBulk to a paused BullMQ queue, the daemon started
           (bullmq section: that queue → default, name noop → noop); timed from Queue.resume until
           BullMQ's `completed` set holds N (so the mirror back into BullMQ is in it).
Then the latency from Queue.add to the first yt-dlp start (its metadata call), for 10 jobs one at a
time, through a stand-in yt-dlp that notes the time and fails. Prints each run, then the ranges.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time

import psycopg
import redis
from bullmq import Queue

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def services() -> tuple[str, str]:
    out = subprocess.run([os.path.join(ROOT, "scripts/services"), "start"], check=True, capture_output=True, text=True).stdout
    env = dict(line.removeprefix("export ").split("=", 1) for line in out.splitlines() if line.startswith("export "))
    return env["MEDIANEST_REDIS_URL"], env["MEDIANEST_DATABASE_URL"]


class Daemon:
    def __init__(self, binary: str, redis_url: str, server_url: str, workdir: str, extra: str = ""):
        self.prefix = "bench" + secrets.token_hex(4)
        self.db = "bench_" + secrets.token_hex(4)
        with psycopg.connect(server_url, autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{self.db}"')
        self.server_url = server_url
        database = server_url.rsplit("/", 1)[0] + "/" + self.db
        self.dir = tempfile.mkdtemp(prefix="mnb-", dir=workdir)
        self.config = os.path.join(self.dir, "jobs.yml")
        with open(self.config, "w") as f:
            f.write(f"""redis: {{ url: "{redis_url}", prefix: {self.prefix} }}
postgres: {{ url: "{database}" }}
paths: {{ library: {self.dir}/library, temp: {self.dir}/tmp }}
control: {{ socket: {self.dir}/c.sock }}
metrics: {{ listen: "off" }}
shutdown_timeout: 10s
queues:
  default: {{ concurrency: 64, max_attempts: 1 }}
  youtube: {{ concurrency: 2, max_attempts: 1 }}
schedules: {{}}
logging: {{ level: info, format: json }}
{extra}
""")
        self.binary = binary
        self.proc = None

    def start(self) -> float:
        env = {k: v for k, v in os.environ.items() if k not in ("MEDIANEST_REDIS_URL", "MEDIANEST_DATABASE_URL", "MEDIANEST_CONFIG")}
        self.log = os.path.join(self.dir, "daemon.log")
        self.proc = subprocess.Popen([self.binary, "run", "--config", self.config], stdout=open(self.log, "w"),
                                     stderr=subprocess.STDOUT, env=env)
        while '"msg":"ready"' not in open(self.log).read():
            if self.proc.poll() is not None:
                sys.exit(f"the daemon exited: {open(self.log).read()[-2000:]}")
            time.sleep(0.002)
        return time.time()

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        with psycopg.connect(self.server_url, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')


def streams_round(args, r: redis.Redis, redis_url: str, server: str, workdir: str) -> float:
    d = Daemon(args.bin, redis_url, server, workdir)
    stream = f"{d.prefix}:queue:default"
    pipe = r.pipeline(transaction=False)
    for i in range(args.jobs):
        pipe.xadd(stream, {"job": f'{{"id":"s-{i}","type":"noop","payload":{{}}}}'})
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    try:
        start = d.start()
        while True:
            groups = r.xinfo_groups(stream)
            g = groups[0] if groups else {}
            if g.get("entries-read") == args.jobs and g.get("lag") == 0 and g.get("pending") == 0:
                break
            time.sleep(0.002)
        return args.jobs / (time.time() - start)
    finally:
        d.stop()


def bullmq_round(args, r: redis.Redis, redis_url: str, server: str, workdir: str, loop) -> float:
    bprefix = "bull" + secrets.token_hex(4)
    d = Daemon(args.bin, redis_url, server, workdir,
               f"bullmq: {{ prefix: {bprefix}, queues: {{ bench: {{ queue: default, jobs: {{ noop: noop }} }} }} }}")
    q = Queue("bench", {"connection": redis_url, "prefix": bprefix})
    try:
        loop.run_until_complete(q.pause())
        for start in range(0, args.jobs, 5000):
            loop.run_until_complete(q.addBulk([{"name": "noop", "data": {}} for _ in range(start, min(start + 5000, args.jobs))]))
        d.start()
        begin = time.time()
        loop.run_until_complete(q.resume())
        while r.zcard(f"{bprefix}:bench:completed") < args.jobs:
            if time.time() - begin > 600:
                sys.exit(f"bullmq round: {r.zcard(f'{bprefix}:bench:completed')} of {args.jobs} after 600 s")
            time.sleep(0.002)
        return args.jobs / (time.time() - begin)
    finally:
        loop.run_until_complete(q.obliterate(force=True))
        loop.run_until_complete(q.close())
        d.stop()


def latency(args, redis_url: str, server: str, workdir: str, loop) -> list[float]:
    stamp = os.path.join(workdir, "ytdlp-starts")
    fake = os.path.join(workdir, "yt-dlp-stamp")
    with open(fake, "w") as f:
        f.write(f"#!/bin/sh\ncase \"$*\" in *--version*) echo 2026.11.01; exit 0;; esac\n"
                f"python3 -c 'import time; print(time.time())' >> {stamp}\necho 'ERROR: [generic] stand-in' >&2\nexit 1\n")
    os.chmod(fake, 0o755)
    bprefix = "bull" + secrets.token_hex(4)
    d = Daemon(args.bin, redis_url, server, workdir,
               f"youtube: {{ yt_dlp: {fake}, allowed_hosts: [127.0.0.1] }}\n"
               f"bullmq: {{ prefix: {bprefix}, queues: {{ youtube-downloads: {{ queue: youtube }} }} }}")
    q = Queue("youtube-downloads", {"connection": redis_url, "prefix": bprefix})
    out = []
    try:
        d.start()
        time.sleep(0.5)
        for i in range(10):
            before = open(stamp).read().count("\n") if os.path.exists(stamp) else 0
            added = time.time()
            loop.run_until_complete(q.add("download-video", {"url": f"http://127.0.0.1:9/v{i}.mp4", "userId": "u"}, {"attempts": 1}))
            while not os.path.exists(stamp) or open(stamp).read().count("\n") == before:
                time.sleep(0.001)
            first = float(open(stamp).read().splitlines()[before])
            out.append((first - added) * 1000)
            time.sleep(0.3)
    finally:
        loop.run_until_complete(q.obliterate(force=True))
        loop.run_until_complete(q.close())
        d.stop()
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default=os.path.join(ROOT, ".build/release/medianest-worker"))
    p.add_argument("--jobs", type=int, default=20000)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    redis_url, server = services()
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    workdir = tempfile.mkdtemp(prefix="bullmq-bench-")
    loop = asyncio.new_event_loop()
    figures: dict[str, list[float]] = {"streams": [], "bullmq": []}
    for n in range(args.rounds):
        for system in ("streams", "bullmq"):
            load = open("/proc/loadavg").read().split()[0]
            rate = streams_round(args, r, redis_url, server, workdir) if system == "streams" else \
                bullmq_round(args, r, redis_url, server, workdir, loop)
            figures[system].append(rate)
            print(f"round {n + 1} {system:8} {rate:8.0f} jobs/s  (load before {load})", flush=True)
    for system, rates in figures.items():
        print(f"{system:8} median {statistics.median(rates):.0f} jobs/s, range {min(rates):.0f}–{max(rates):.0f}")
    lat = latency(args, redis_url, server, workdir, loop)
    print(f"Queue.add → yt-dlp start: median {statistics.median(lat):.0f} ms, range {min(lat):.0f}–{max(lat):.0f} ms "
          f"({len(lat)} jobs, one at a time)")


if __name__ == "__main__":
    main()
