"""Celery (PyPI celery[redis]): no-op jobs.

    enqueue   N apply_async calls over one producer
    worker    threads pool, 16 threads, no result backend, no gossip/mingle/heartbeat, log level warning

Environment: REDIS_URL, PEERS_JOBS.
"""
import os
import sys
import threading
import time

from celery import Celery

URL, N = os.environ["REDIS_URL"], int(os.environ["PEERS_JOBS"])
app = Celery("celery_noop", broker=URL)
app.conf.task_ignore_result = True
app.conf.worker_redirect_stdouts = False  # our START/DONE lines go to stdout as they are
lock, state = threading.Lock(), {"n": 0, "first": None}


@app.task(name="noop")
def noop(i):
    now = time.time()
    with lock:
        if state["first"] is None:
            state["first"] = now
            print("START", now, flush=True)
        state["n"] += 1
        n = state["n"]
    if n == N:
        print("DONE", N, state["first"], time.time(), "\nEND", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "enqueue":
        with app.producer_or_acquire() as producer:
            for i in range(N):
                noop.apply_async((i,), producer=producer)
        with app.connection_for_write() as conn:
            print("ENQUEUED", conn.default_channel.client.llen("celery"))
    else:
        app.worker_main(["worker", "--pool", "threads", "--concurrency", "16", "--loglevel", "WARNING",
                         "--without-gossip", "--without-mingle", "--without-heartbeat"])
