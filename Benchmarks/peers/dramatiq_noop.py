"""Dramatiq (PyPI dramatiq[redis]): no-op jobs.

    enqueue   N actor.send calls
    worker    one Worker in this process, 8 threads, the broker's default middleware, logging at WARNING

Environment: REDIS_URL, PEERS_JOBS.
"""
import logging
import os
import sys
import threading
import time

import dramatiq
from dramatiq.brokers.redis import RedisBroker

URL, N = os.environ["REDIS_URL"], int(os.environ["PEERS_JOBS"])
broker = RedisBroker(url=URL)
dramatiq.set_broker(broker)
lock, state = threading.Lock(), {"n": 0, "first": None}


@dramatiq.actor(queue_name="default", max_retries=0)
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
    logging.basicConfig(level=logging.WARNING)
    if sys.argv[1] == "enqueue":
        for i in range(N):
            noop.send(i)
        print("ENQUEUED", broker.client.llen("dramatiq:default"))
    else:
        dramatiq.Worker(broker, worker_threads=8).start()
        threading.Event().wait()
