"""A webhook receiver for the end-to-end tests, doing what a MediaNest integrator should do:
recompute HMAC-SHA256(secret, "<X-MediaNest-Timestamp>.<raw body>"), compare it in constant
time with `X-MediaNest-Signature: sha256=<hex>`, and refuse timestamps older than `tolerance`
seconds (a captured delivery cannot be replayed). Accepted deliveries answer 200; the first
`fail_first` otherwise-valid deliveries answer 500, to exercise the sender's retries.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class WebhookReceiver:
    def __init__(self, secret: str, tolerance: float = 300.0):
        self.secret = secret
        self.tolerance = tolerance
        self.fail_first = 0
        self.accepted: list[dict] = []
        self.refused: list[dict] = []
        self.failed: list[dict] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/medianest"

    def start(self) -> "WebhookReceiver":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def log_tail(self, n: int = 20) -> str:
        with self.lock:
            rows = [("accepted", r) for r in self.accepted] + [("refused", r) for r in self.refused] + [("failed", r) for r in self.failed]
        rows.sort(key=lambda x: x[1]["at"])
        return "\n".join(f"{kind} {r.get('reason', '')} {r['body'][:200]!r}" for kind, r in rows[-n:])

    def check(self, headers: dict[str, str], body: bytes) -> str | None:
        """Why a delivery is refused, or None when it is authentic and fresh."""
        timestamp = headers.get("x-medianest-timestamp", "")
        signature = headers.get("x-medianest-signature", "")
        if not timestamp.isdigit():
            return "missing or malformed timestamp"
        if abs(time.time() - int(timestamp)) > self.tolerance:
            return "timestamp too old"
        if not hmac.compare_digest(sign(self.secret, timestamp, body), signature):
            return "bad signature"
        return None

    def deliveries(self, event: str | None = None) -> list[dict]:
        with self.lock:
            return [r["json"] for r in self.accepted if event is None or r["json"].get("event") == event]

    def _handler_class(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                record = {"headers": headers, "body": body, "at": time.time()}
                reason = receiver.check(headers, body)
                with receiver.lock:
                    if reason is not None:
                        record["reason"] = reason
                        receiver.refused.append(record)
                        status = 401
                    elif receiver.fail_first > 0:
                        receiver.fail_first -= 1
                        receiver.failed.append(record)
                        status = 500
                    else:
                        record["json"] = json.loads(body)
                        receiver.accepted.append(record)
                        status = 200
                data = json.dumps({"ok": status == 200, "reason": reason}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
