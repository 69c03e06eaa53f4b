"""A fake Overseerr for the end-to-end tests: `POST /api/v1/request`, `GET /api/v1/request/{id}`
and `GET /api/v1/status`, authenticated with `X-Api-Key`, answering as Overseerr documents (201
with the new MediaRequest, 4xx with `{"message": ...}`, 409 when the media was requested
already). Every request is recorded; `script[tmdbId]` lists the statuses to answer, one per
request, for that media (the last one repeats), and `on_request` (if set) is called before each
request is answered.

`GET /api/v1/request/{id}` answers the MediaRequest with its `status` (1 pending approval,
2 approved, 3 declined) and `media.status` (2 pending, 3 processing, 4 partially available,
5 available) from `states[id]`, which a test sets with `set_state` between runs; a request
created by POST starts at (1, 2). An id in neither answers 404; `fail_gets` (an HTTP status)
makes every GET of a request answer that status instead.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


class FakeOverseerr:
    def __init__(self, api_key: str):
        self.api_key = api_key
        self.script: dict[int, list[int]] = {}
        self.requests: list[dict] = []
        self.created: list[dict] = []
        self.lock = threading.Lock()
        self.next_id = 17
        self.on_request: Callable[[dict], None] | None = None
        self.states: dict[int, tuple[int, int]] = {}
        self.fail_gets: int | None = None
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> "FakeOverseerr":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def log_tail(self, n: int = 30) -> str:
        with self.lock:
            return "\n".join(f"{r['method']} {r['path']} {r.get('json')} -> {r.get('status')}" for r in self.requests[-n:])

    def posts(self, tmdb_id: int | None = None) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if r["method"] == "POST"
                    and (tmdb_id is None or (r.get("json") or {}).get("mediaId") == tmdb_id)]

    def set_state(self, request_id: int, status: int, media_status: int) -> None:
        """What GET /api/v1/request/{request_id} answers from now on."""
        with self.lock:
            self.states[request_id] = (status, media_status)

    def gets(self, request_id: int | None = None) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if r["method"] == "GET" and r["path"].startswith("/api/v1/request/")
                    and (request_id is None or r["path"] == f"/api/v1/request/{request_id}")]

    def handle(self, record: dict) -> tuple[int, Any]:
        if record["headers"].get("x-api-key") != self.api_key:
            return 403, {"message": "You do not have permission to access this endpoint"}
        if record["path"] == "/api/v1/status" and record["method"] == "GET":
            return 200, {"version": "1.33.2", "commitTag": "test", "updateAvailable": False, "commitsBehind": 0}
        if record["path"].startswith("/api/v1/request/") and record["method"] == "GET":
            if self.fail_gets is not None:
                return self.fail_gets, {"message": "Internal Server Error (test)"}
            tail = record["path"].rsplit("/", 1)[1]
            if not tail.isdigit() or int(tail) not in self.states:
                return 404, {"message": "Request not found."}
            status, media_status = self.states[int(tail)]
            return 200, {"id": int(tail), "status": status, "is4k": False, "type": "movie",
                         "createdAt": "2024-01-01T00:00:00.000Z", "updatedAt": "2024-01-02T00:00:00.000Z",
                         "media": {"id": 900 + int(tail), "tmdbId": 1000 + int(tail), "mediaType": "movie",
                                   "status": media_status, "status4k": 1},
                         "requestedBy": {"id": 1, "displayName": "Requester", "email": "r@example.com"},
                         "modifiedBy": {"id": 2, "displayName": "Admin"} if status != 1 else None}
        if record["path"] == "/api/v1/request" and record["method"] == "POST":
            body = record.get("json")
            if not isinstance(body, dict) or body.get("mediaType") not in ("movie", "tv") or not isinstance(body.get("mediaId"), int):
                return 400, {"message": "Invalid request body"}
            tmdb = body["mediaId"]
            steps = self.script.get(tmdb, [201])
            status = steps.pop(0) if len(steps) > 1 else steps[0]
            if status == 201:
                if any(c["media"]["tmdbId"] == tmdb for c in self.created):
                    return 409, {"message": "Request for this media already exists."}
                request = {"id": self.next_id, "status": 1, "type": body["mediaType"],
                           "media": {"tmdbId": tmdb, "mediaType": body["mediaType"], "status": 2},
                           "seasons": [{"seasonNumber": s} for s in body.get("seasons", [])] if isinstance(body.get("seasons"), list) else []}
                self.states[self.next_id] = (1, 2)
                self.next_id += 1
                self.created.append(request)
                return 201, request
            if status == 400:
                return 400, {"message": f"TMDB id {tmdb} is not a {body['mediaType']}"}
            if status == 409:
                return 409, {"message": "Request for this media already exists."}
            return status, {"message": "Internal Server Error (test)"}
        return 404, {"message": "not found"}

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _serve(self, method: str):
                parsed = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                try:
                    parsed_body = json.loads(body) if body else None
                except ValueError:
                    parsed_body = None
                record = {"method": method, "path": parsed.path, "query": parsed.query,
                          "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body,
                          "json": parsed_body, "at": time.time()}
                if fake.on_request is not None:
                    fake.on_request(record)
                with fake.lock:
                    fake.requests.append(record)
                    status, payload = fake.handle(record)
                    record["status"] = status
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._serve("GET")

            def do_POST(self):
                self._serve("POST")

        return Handler
