"""arq (PyPI arq): no-op jobs.

    enqueue   N enqueue_job calls, 100 in flight at a time
    worker    one Worker with arq's defaults (max_jobs 10, poll_delay 0.5 s, results kept an hour), logging
              at WARNING; with PEERS_ARQ_MAX_JOBS=M, max_jobs M and poll_delay 0.01 s instead

With the defaults a worker reads at most queue_read_limit = max(5 * max_jobs, 100) job ids per poll
and polls every 0.5 s, so a backlog drains at no more than about 200 jobs/s whatever the machine.

Environment: REDIS_URL, PEERS_JOBS, PEERS_ARQ_MAX_JOBS (optional).
"""
import asyncio
import logging
import os
import sys
import time

from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker

URL, N = os.environ["REDIS_URL"], int(os.environ["PEERS_JOBS"])
SETTINGS = RedisSettings.from_dsn(URL)
state = {"n": 0, "first": None}
finished = asyncio.Event()


async def noop(ctx, i):
    now = time.time()
    if state["first"] is None:
        state["first"] = now
        print("START", now, flush=True)
    state["n"] += 1
    if state["n"] == N:
        state["last"] = time.time()
        finished.set()


async def enqueue():
    pool = await create_pool(SETTINGS)
    for start in range(0, N, 100):
        await asyncio.gather(*(pool.enqueue_job("noop", i) for i in range(start, min(N, start + 100))))
    print("ENQUEUED", await pool.zcard("arq:queue"))
    await pool.aclose()


async def work():
    tuned = {"max_jobs": int(os.environ["PEERS_ARQ_MAX_JOBS"]), "poll_delay": 0.01} if os.environ.get("PEERS_ARQ_MAX_JOBS") else {}
    worker = Worker(functions=[noop], redis_settings=SETTINGS, handle_signals=False, **tuned)
    asyncio.ensure_future(worker.async_run())
    await finished.wait()
    print("DONE", N, state["first"], state["last"], "\nEND", flush=True)
    await asyncio.Event().wait()  # stay until the driver stops us (it reads our CPU first)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(enqueue() if sys.argv[1] == "enqueue" else work())
