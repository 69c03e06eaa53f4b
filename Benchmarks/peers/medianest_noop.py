"""medianest-worker: no-op jobs through the daemon, driven as queue-bench does (records on).

    enqueue   N plain XADDs of {"id","type":"noop","payload":{}} to peers:queue:default,
              pipelined through redis-cli --pipe (the intake is a plain XADD: no client library)
    worker    a fresh PostgreSQL database, a configuration with queues.default.concurrency 64,
              the queue paused (the persisted pause, P:paused), the daemon started; once it is
              ready and its start-up check of yt-dlp (a Python start, about half a second of a
              core) has ended, the queue is resumed with the contract's `resume` command. START
              when the first entry is read (as the others' START is their first job's start),
              DONE when every entry is delivered and acknowledged (XINFO GROUPS: entries-read N,
              lag 0, pending 0), END when every `jobs` row says completed. Stdlib only (a small
              RESP client below).

Environment: REDIS_URL, PEERS_JOBS, PEERS_DIR, PEERS_DATABASE (server URL), MEDIANEST_BIN.
"""
import os
import random
import signal
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit, urlunsplit

URL, N, DIR = os.environ["REDIS_URL"], int(os.environ["PEERS_JOBS"]), os.environ["PEERS_DIR"]
PREFIX = "peers"
STREAM = f"{PREFIX}:queue:default"


class Resp:
    """Just enough RESP2 for XLEN and XINFO GROUPS."""

    def __init__(self, url):
        u = urlsplit(url)
        self.sock = socket.create_connection((u.hostname, u.port or 6379))
        self.file = self.sock.makefile("rb")

    def call(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        return self._read()

    def _read(self):
        line = self.file.readline()
        kind, rest = line[:1], line[1:-2]
        if kind in (b"+", b"-"):
            return rest.decode()
        if kind == b":":
            return int(rest)
        if kind == b"$":
            return None if rest == b"-1" else self.file.read(int(rest) + 2)[:-2].decode()
        if kind == b"*":
            return None if rest == b"-1" else [self._read() for _ in range(int(rest))]
        raise RuntimeError(f"unexpected reply {line!r}")


def enqueue():
    def cmd(*args):
        parts = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a.encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(parts)

    data = b"".join(cmd("XADD", STREAM, "*", "job", f'{{"id":"{PREFIX}-{i}","type":"noop","payload":{{}}}}')
                    for i in range(N))
    subprocess.run(["redis-cli", "-u", URL, "--pipe"], input=data, check=True, stdout=subprocess.DEVNULL)
    print("ENQUEUED", Resp(URL).call("XLEN", STREAM))


def psql(url, sql):
    return subprocess.run(["psql", "-X", "-q", "-At", url, "-c", sql], check=True, capture_output=True, text=True).stdout.strip()


def worker():
    server = os.environ["PEERS_DATABASE"]
    if not server:
        sys.exit("PEERS_DATABASE is empty: pass --database URL")
    name = f"peers{random.randrange(1 << 32)}"
    psql(server, f"CREATE DATABASE {name}")
    u = urlsplit(server)
    database = urlunsplit(u._replace(path="/" + name))
    config = os.path.join(DIR, "jobs.yml")
    with open(config, "w") as f:
        f.write(f"""redis: {{ url: "{URL}", prefix: {PREFIX} }}
postgres: {{ url: "{database}" }}
paths: {{ library: {DIR}/library, temp: {DIR}/tmp }}
control: {{ socket: {DIR}/control.sock }}
metrics: {{ listen: "off" }}
shutdown_timeout: 10s
queues:
  default: {{ concurrency: 64 }}
schedules: {{}}
logging: {{ level: info, format: json }}
""")
    redis = Resp(URL)
    # Held until the daemon's start-up is over, so that its start-up work is not timed as the drain's.
    redis.call("SADD", f"{PREFIX}:paused", "default")
    env = {k: v for k, v in os.environ.items() if k not in ("MEDIANEST_REDIS_URL", "MEDIANEST_DATABASE_URL", "MEDIANEST_CONFIG")}
    log_path = os.path.join(DIR, "daemon.log")
    daemon = subprocess.Popen([os.environ["MEDIANEST_BIN"], "run", "--config", config],
                              stdout=open(log_path, "w"), stderr=subprocess.STDOUT, env=env)

    def finish(*_):
        # The driver's SIGTERM reaches the daemon too (same process group); wait for it, drop the database.
        try:
            daemon.terminate()
            daemon.wait(15)
        except subprocess.TimeoutExpired:
            daemon.kill()
        psql(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        os._exit(0)

    signal.signal(signal.SIGTERM, finish)
    print("PID", daemon.pid, flush=True)
    def logged(message, timeout):
        deadline = time.time() + timeout
        while f'"msg":"{message}"' not in open(log_path).read():
            if daemon.poll() is not None:
                sys.exit(f"the daemon exited {daemon.returncode}: {open(log_path).read()[-2000:]}")
            if time.time() > deadline:
                return False
            time.sleep(0.002)
        return True

    if not logged("ready", 120):
        sys.exit("the daemon was not ready within 120 s")
    ready = time.time()
    if not logged("yt-dlp check", 30):
        print("NOTE no yt-dlp check logged within 30 s of ready", flush=True)
    print(f"NOTE start-up settled {time.time() - ready:.2f} s after ready", flush=True)

    def group():
        groups = redis.call("XINFO", "GROUPS", STREAM)
        return dict(zip(groups[0][::2], groups[0][1::2])) if groups else {}

    redis.call("XADD", f"{PREFIX}:control", "*", "cmd", "resume", "queue", "default")
    while not group().get("entries-read"):
        time.sleep(0.001)
    start = time.time()
    print("START", start, flush=True)
    while True:
        g = group()
        if g.get("entries-read") == N and g.get("lag") == 0 and g.get("pending") == 0:
            break
        time.sleep(0.002)
    drained = time.time()
    print("DONE", N, start, drained, flush=True)
    while psql(database, "SELECT count(*) FROM jobs WHERE state = 'completed'") != str(N):
        time.sleep(0.02)
    recorded = time.time()
    # Records on: the run is done when the last job's row is in PostgreSQL, not when Redis is empty.
    print("RECORDED", recorded, flush=True)
    print(f"NOTE rows +{recorded - drained:.2f} s", flush=True)
    pids = psql(database, f"SELECT pid FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()").split()
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    pg = ticks / os.sysconf("SC_CLK_TCK") / N * 1e6
    print(f"NOTE PostgreSQL backends {pg:.0f} µs/job (since the daemon started)", flush=True)
    print("END", flush=True)
    while True:
        signal.pause()


if __name__ == "__main__":
    {"enqueue": enqueue, "worker": worker}[sys.argv[1]]()
