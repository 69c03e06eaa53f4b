#!/usr/bin/env python3
"""youtube-bench: figures for youtube.download, not pass/fail.

1. Start latency: time from the API's XADD to the moment yt-dlp starts, with an idle slot.
   yt-dlp is replaced by a tiny C program (compiled here with cc) that records the wall clock
   at its first instruction and describes a live stream, so the job ends right after.
2. Footprint: the daemon's CPU (user + system, its own threads only: yt-dlp processes are
   children with their own accounting) and RSS while N downloads run with real yt-dlp from a
   throttled loopback server.

    MEDIANEST_TEST_REDIS_URL=redis://127.0.0.1:6390/0 \\
    MEDIANEST_TEST_DATABASE_URL=postgres://medianest@127.0.0.1:5440/medianest \\
    python3 Benchmarks/youtube_bench.py --daemon .build/release/medianest-worker
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "Tests" / "e2e"))

from harness import Harness, wait_for  # noqa: E402
from media_server import MediaServer, make_fixtures  # noqa: E402

FAKE_YTDLP = r"""
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>
int main(int argc, char **argv) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char line[4096];
    int n = snprintf(line, sizeof line, "%lld %s\n", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec, argv[argc - 1]);
    int fd = open("LOGPATH", O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd >= 0) { write(fd, line, n); close(fd); }
    fputs("{\"id\":\"bench\",\"title\":\"bench\",\"is_live\":true,\"extractor\":\"generic\"}\n", stdout);
    return 0;
}
"""


def build_fake(workdir: Path) -> tuple[Path, Path]:
    log = workdir / "starts.log"
    src = workdir / "fake-ytdlp.c"
    src.write_text(FAKE_YTDLP.replace("LOGPATH", str(log)))
    exe = workdir / "fake-ytdlp"
    subprocess.run(["cc", "-O2", "-o", str(exe), str(src)], check=True)
    return exe, log


def start_latency(h: Harness, daemon: str, samples: int) -> None:
    fake, log = build_fake(h.workdir)
    h.daemon(queues={"youtube": {"concurrency": 4, "max_attempts": 1}},
             youtube={"allowed_hosts": ["127.0.0.1"], "yt_dlp": str(fake)},
             logging={"level": "info", "format": "json"})
    sent: dict[str, int] = {}
    for i in range(samples + 3):
        url = f"http://127.0.0.1:9/video-{i}.mp4?n={uuid.uuid4().hex}"
        job = f"lat-{i}"
        env = {"id": job, "type": "youtube.download",
               "payload": {"downloadId": str(uuid.uuid4()), "url": url, "quality": "best", "format": "mp4"}}
        text = json.dumps(env, separators=(",", ":"))
        t = time.time_ns()
        h.r.xadd(h.key("queue", "youtube"), {"job": text})
        sent[url] = t
        h.wait_state(job, ("failed", "completed"), timeout=10)
        time.sleep(0.05)  # the slot is idle and the fetcher blocked in XREADGROUP again
    starts = {}
    for line in log.read_text().splitlines():
        ns, url = line.split(" ", 1)
        starts.setdefault(url, int(ns))
    lat = sorted((starts[u] - t) / 1e6 for u, t in list(sent.items())[3:] if u in starts)
    print(f"XADD -> yt-dlp start, idle slot, {len(lat)} jobs (first 3 are warm-up, not counted):")
    print(f"  p50 {statistics.median(lat):.2f} ms   p90 {lat[int(len(lat) * 0.9) - 1]:.2f} ms   "
          f"min {lat[0]:.2f} ms   max {lat[-1]:.2f} ms")
    h.stop_daemons()


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def footprint(h: Harness, downloads: int, rate: int, seconds: float) -> None:
    root = Path(tempfile.mkdtemp(prefix="yt-bench-media-"))
    make_fixtures(root)
    server = MediaServer(root, rate=rate).start()
    d = h.daemon(queues={"youtube": {"concurrency": downloads, "max_attempts": 1, "timeout": "10m"}},
                 youtube={"allowed_hosts": ["127.0.0.1"]}, logging={"level": "info", "format": "json"})
    size = (root / "media" / "long.mp4").stat().st_size
    print(f"{downloads} downloads of {size // 1024} KiB at {rate // 1024} KiB/s each from a loopback server, real yt-dlp:")
    rss_idle = proc_rss_mib(d.pid)
    jobs = []
    for i in range(downloads):
        job = f"fp-{i}"
        env = {"id": job, "type": "youtube.download",
               "payload": {"downloadId": str(uuid.uuid4()), "url": server.url(f"slow/long.mp4?copy={i}"),
                           "quality": "best", "format": "mp4"}}
        h.r.xadd(h.key("queue", "youtube"), {"job": json.dumps(env)})
        jobs.append(job)
    # Measure once every download is moving bytes.
    wait_for(lambda: all(int(h.job(j).get("downloadedBytes") or 0) > 0 for j in jobs), 120, "every download to run")
    cpu0, t0 = proc_cpu_seconds(d.pid), time.monotonic()
    rss_max = 0.0
    rss = []
    while time.monotonic() - t0 < seconds:
        rss_now = proc_rss_mib(d.pid)
        rss.append(rss_now)
        rss_max = max(rss_max, rss_now)
        time.sleep(0.25)
    cpu1, t1 = proc_cpu_seconds(d.pid), time.monotonic()
    active = sum(1 for j in jobs if h.job(j).get("state") == "active")
    print(f"  daemon CPU {100 * (cpu1 - cpu0) / (t1 - t0):.2f} % of one core over {t1 - t0:.1f} s "
          f"({active} downloads still active at the end)")
    print(f"  daemon RSS: idle {rss_idle:.1f} MiB, during the downloads mean {statistics.mean(rss):.1f} MiB, max {rss_max:.1f} MiB")
    h.stop_daemons()
    server.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--daemon", default=str(REPO / ".build" / "release" / "medianest-worker"))
    p.add_argument("--samples", type=int, default=50)
    p.add_argument("--downloads", type=int, default=8)
    p.add_argument("--rate", type=int, default=8192, help="bytes per second per download")
    p.add_argument("--seconds", type=float, default=10)
    args = p.parse_args()
    os.environ["MEDIANEST_BIN"] = str(Path(args.daemon).resolve())
    redis_url = os.environ.get("MEDIANEST_TEST_REDIS_URL", "redis://127.0.0.1:6390/0")
    database_url = os.environ.get("MEDIANEST_TEST_DATABASE_URL", "postgres://medianest@127.0.0.1:5440/medianest")
    print(f"youtube-bench: daemon {args.daemon}, {os.cpu_count()} cores")
    for step in (lambda h: start_latency(h, args.daemon, args.samples),
                 lambda h: footprint(h, args.downloads, args.rate, args.seconds)):
        work = Path(tempfile.mkdtemp(prefix="yt-bench-"))
        h = Harness(redis_url, database_url, work)
        try:
            step(h)
        finally:
            h.cleanup()


if __name__ == "__main__":
    main()
