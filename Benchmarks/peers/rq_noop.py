"""RQ (PyPI rq): no-op jobs.

    enqueue   N jobs through Queue.enqueue_many, 1,000 a pipeline
    worker    one SimpleWorker (runs jobs in its own process, no fork), logging at WARNING

Environment: REDIS_URL, PEERS_JOBS.
"""
import os
import sys
import signal
import time

from redis import Redis
from rq import Queue, SimpleWorker

URL, N = os.environ["REDIS_URL"], int(os.environ["PEERS_JOBS"])
state = {"n": 0, "first": None}


def noop(i):
    now = time.time()
    if state["first"] is None:
        state["first"] = now
        print("START", now, flush=True)
    state["n"] += 1
    if state["n"] == N:
        print("DONE", N, state["first"], time.time(), "\nEND", flush=True)


def main():
    redis = Redis.from_url(URL)
    queue = Queue("default", connection=redis)
    if sys.argv[1] == "enqueue":
        for start in range(0, N, 1000):
            with redis.pipeline() as pipe:
                queue.enqueue_many([Queue.prepare_data("rq_noop.noop", (i,)) for i in range(start, min(N, start + 1000))],
                                   pipeline=pipe)
                pipe.execute()
        print("ENQUEUED", queue.count)
        return
    # Burst: the worker returns when the queue is empty; then we stay until the driver stops us.
    SimpleWorker([queue], connection=redis).work(burst=True, logging_level="WARNING")
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pause()


if __name__ == "__main__":
    main()
