"""The MediaNest backend's side of BullMQ, through PyPI's `bullmq` package (it runs BullMQ's own
Lua scripts): a producer and reader on one event loop, as synchronous calls for the tests."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

from bullmq import Job, Queue

# What the backend passes to Queue.add for a download (UPSTREAM.md section 2).
BACKEND_JOB_OPTIONS = {"priority": 1, "attempts": 3, "backoff": {"type": "exponential", "delay": 5000}}
BACKEND_QUEUE_DEFAULTS = {"removeOnComplete": {"count": 100, "age": 86400}, "removeOnFail": {"count": 500, "age": 604800}}


class Bull:
    """One BullMQ queue under a prefix of the test's own."""

    def __init__(self, redis_url: str, name: str = "youtube-downloads", prefix: str | None = None,
                 defaults: dict | None = None):
        self.loop = asyncio.new_event_loop()
        self.name = name
        self.prefix = prefix or "bull" + secrets.token_hex(4)
        opts: dict[str, Any] = {"connection": redis_url, "prefix": self.prefix}
        if defaults is not None:
            opts["defaultJobOptions"] = defaults
        self.queue = Queue(name, opts)

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def key(self, suffix: str) -> str:
        return f"{self.prefix}:{self.name}:{suffix}"

    def add(self, name: str, data: dict, **opts) -> str:
        return self.run(self.queue.add(name, data, opts)).id

    def job(self, job_id: str) -> Job | None:
        return self.run(Job.fromId(self.queue, job_id))

    def state(self, job_id: str) -> str:
        return self.run(self.queue.getJobState(job_id)) if hasattr(self.queue, "getJobState") else self.run(self.job(job_id).getState())

    def remove(self, job_id: str) -> None:
        self.run(self.job(job_id).remove())

    def pause(self) -> None:
        self.run(self.queue.pause())

    def resume(self) -> None:
        self.run(self.queue.resume())

    def events(self, r) -> list[dict]:
        """The queue's `events` stream, oldest first."""
        return [fields for _, fields in r.xrange(self.key("events"))]

    def close(self) -> None:
        self.run(self.queue.close())
        self.loop.close()


def returnvalue(job: Job) -> Any:
    """The job's returnvalue as the backend's QueueEvents reads it: JSON.parse with no guard."""
    raw = job.returnvalue
    return json.loads(raw) if isinstance(raw, str) else raw
