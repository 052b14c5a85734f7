"""Loopback servers for the notification tests: SMTP (aiosmtpd, STARTTLS, AUTH) and the Slack HTTP APIs.

- `MailServer(tmp_path)`: an aiosmtpd server on 127.0.0.1 that requires STARTTLS (a trustme
  certificate; `ca_file` is the CA to trust) and AUTH over TLS with `USER`/`PASSWORD`. It keeps every
  message it accepted (`messages`, parsed) and every login; `refuse(n)` makes it answer the next n
  messages with `451 4.3.0 Try again later`.
- `SlackServer()`: a threading HTTP server that plays `POST /api/chat.postMessage` (Web API, bot token)
  and `POST /services/T0/B0/SECRETPATH` (an incoming webhook). It keeps every request (`requests`) and
  answers from `script` first (e.g. a 429 with Retry-After), then with success.
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from compliance.settings import Settings, load_settings

USER = "monitor@gemeente.example"
PASSWORD = "Pw-SMTP-7f3a9c1e-not-in-logs"
SLACK_TOKEN = "xoxb-0000-TOKEN-5e8d2b4a-not-in-logs"
WEBHOOK_PATH = "/services/T0/B0/WEBHOOK5c1d9e7bSECRET"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MailServer:
    """A real SMTP server on loopback with STARTTLS and AUTH, for one test."""

    def __init__(self, folder: Path, *, starttls: bool = True) -> None:
        import trustme

        self.ca = trustme.CA()
        self.ca_file = folder / "smtp-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self.envelopes: list[Any] = []
        self.logins: list[tuple[str, str]] = []
        self._refuse = 0
        self._lock = threading.Lock()
        self._starttls = starttls
        self._controller: Any = None

    def refuse(self, times: int) -> None:
        with self._lock:
            self._refuse = times

    def __enter__(self) -> MailServer:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        server = self

        class Handler:
            async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
                with server._lock:
                    if server._refuse > 0:
                        server._refuse -= 1
                        return "451 4.3.0 Try again later"
                    server.envelopes.append(envelope)
                    server.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
                return "250 OK"

        def authenticate(_server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any) -> Any:
            login, password = data.login.decode(), data.password.decode()
            server.logins.append((login, password))
            # handled=False: aiosmtpd answers 535 itself when the credentials are wrong
            return AuthResult(success=login == USER and password == PASSWORD, handled=False)

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        options: dict[str, Any] = {"authenticator": authenticate, "auth_require_tls": True}
        if self._starttls:
            options.update(tls_context=context, require_starttls=True)
        # aiosmtpd warns about its own deprecated Session.login_data on every AUTH: not our output
        logging.getLogger("mail.log").setLevel(logging.ERROR)
        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **options)
        self._controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._controller.stop()

    def config(self, sender: str = "compliance@gemeente.example", to: str = "[ciso@gemeente.example, "
               "directie@gemeente.example]") -> str:
        """The smtp: and digest: sections of compliance.yaml for this server (the password comes from the
        environment: COMPLIANCE_SMTP_PASSWORD)."""
        return (f"smtp:\n  host: 127.0.0.1\n  port: {self.port}\n  starttls: true\n  user: {USER}\n"
                f"  ca_file: {self.ca_file}\n  timeout: 10s\n"
                f"digest:\n  from: {sender}\n  to: {to}\n")


@dataclass
class SlackRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class SlackServer:
    """Slack's Web API and an incoming webhook on loopback."""

    script: list[tuple[int, dict[str, str], str]] = field(default_factory=list)
    requests: list[SlackRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                try:
                    body = json.loads(raw) if raw else {}
                except json.JSONDecodeError:  # form-encoded
                    from urllib.parse import parse_qsl

                    body = dict(parse_qsl(raw))
                server.requests.append(SlackRequest(self.path, dict(self.headers), body))
                if server.script:
                    status, headers, text = server.script.pop(0)
                elif self.path.startswith("/api/"):
                    status, headers, text = 200, {"Content-Type": "application/json"}, '{"ok": true, "ts": "1.2"}'
                else:
                    status, headers, text = 200, {"Content-Type": "text/plain"}, "ok"
                data = text.encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self.port = self._http.server_address[1]

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"

    def __enter__(self) -> SlackServer:
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self._http.shutdown()
        self._http.server_close()

    def posts(self, kind: str = "api") -> list[SlackRequest]:
        prefix = "/api/chat.postMessage" if kind == "api" else WEBHOOK_PATH
        return [r for r in self.requests if r.path == prefix]


def parts(message: EmailMessage) -> Iterator[tuple[str, EmailMessage]]:
    """(content type, part) for every part of a message, depth first."""
    for part in message.walk():
        yield part.get_content_type(), part  # type: ignore[misc]


def settings_for(tmp_path: Path, db_url: str, extra: str, **env: str) -> Settings:
    """Settings from a compliance.yaml with the test database and `extra` YAML, and `env` as environment."""
    config = tmp_path / "compliance.yaml"
    config.write_text(f"database:\n  url: {db_url}\n{extra}", encoding="utf-8")
    return load_settings(str(config), environ=env)
