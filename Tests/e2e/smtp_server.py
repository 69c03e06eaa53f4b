"""A real SMTP server for the end-to-end tests (aiosmtpd) that offers STARTTLS with a
self-signed certificate made at test time, requires it before AUTH (PLAIN and LOGIN), and
records each message with whether its session was encrypted and authenticated.
"""

from __future__ import annotations

import email
import email.policy
import ssl
import subprocess
import threading
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from harness import free_port


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: (cert.pem, key.pem)."""
    cert, key = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=medianest-test-smtp", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class SMTPServer:
    def __init__(self, folder: Path, username: str, password: str):
        self.username = username
        self.password = password
        self.cert, self.key = make_certificate(folder)
        self.messages: list[dict] = []
        self.auth_attempts: list[dict] = []
        self.lock = threading.Lock()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.cert), str(self.key))
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, tls_context=context,
                                     require_starttls=True, auth_required=True, auth_require_tls=True,
                                     authenticator=self._authenticate)

    def start(self) -> "SMTPServer":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def log_tail(self, n: int = 20) -> str:
        with self.lock:
            return "\n".join([f"auth {a}" for a in self.auth_attempts[-n:]] +
                             [f"message {m['mail_from']} -> {m['rcpt_tos']} tls={m['tls']}" for m in self.messages[-n:]])

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == self.username
              and auth_data.password.decode() == self.password)
        with self.lock:
            self.auth_attempts.append({"mechanism": mechanism, "ok": ok, "tls": session.ssl is not None})
        return AuthResult(success=ok, handled=False)

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append({"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos),
                                  "message": message, "raw": envelope.content, "tls": session.ssl is not None,
                                  "authenticated": bool(session.authenticated)})
        return "250 OK"
