"""BullMQ (PyPI bullmq): no-op jobs.

    enqueue   N jobs through Queue.addBulk, 1,000 a call
    worker    one Worker, concurrency 64, default options (completed jobs are kept)

Environment: REDIS_URL, PEERS_JOBS.
"""
import asyncio
import os
import sys
import time

from bullmq import Queue, Worker

URL, N = os.environ["REDIS_URL"], int(os.environ["PEERS_JOBS"])


async def enqueue():
    queue = Queue("noop", {"connection": URL})
    for start in range(0, N, 1000):
        await queue.addBulk([{"name": "noop", "data": {"i": i}} for i in range(start, min(N, start + 1000))])
    print("ENQUEUED", await queue.getJobCountByTypes("wait"))
    await queue.close()


async def work():
    done, state = asyncio.Event(), {"n": 0, "first": None}

    async def noop(job, token):
        now = time.time()
        if state["first"] is None:
            state["first"] = now
            print("START", now, flush=True)
        state["n"] += 1
        if state["n"] == N:
            state["last"] = time.time()
            done.set()

    worker = Worker("noop", noop, {"connection": URL, "concurrency": 64})
    await done.wait()
    print("DONE", N, state["first"], state["last"], "\nEND", flush=True)
    await asyncio.Event().wait()  # stay until the driver stops us (it reads our CPU first)


if __name__ == "__main__":
    asyncio.run(enqueue() if sys.argv[1] == "enqueue" else work())
