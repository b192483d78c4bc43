"""Outgoing mail: SMTP in production, a dev mailbox (files in the data dir) for `make dev` and tests."""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
import uuid
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

import orjson
from pydantic import BaseModel, Field

from segops import clock
from segops.errors import DependencyDown

log = logging.getLogger("segops.mail")


class Mail(BaseModel):
    to: str
    subject: str
    text: str
    # The links the application put in `text` (never parsed out of it: a tenant name may hold a URL).
    links: list[str] = Field(default_factory=list)
    sent_at: datetime = Field(default_factory=clock.now)


class Mailer(Protocol):
    def send(self, mail: Mail) -> None: ...


class SmtpMailer:
    """Plain stdlib SMTP: one connection per mail (account mail is rare), STARTTLS unless disabled."""

    def __init__(
        self, host: str, port: int, sender: str, username: str, password: str, starttls: bool, timeout: float
    ) -> None:
        self._host = host
        self._port = port
        self._sender = sender
        self._username = username
        self._password = password
        self._starttls = starttls
        self._timeout = timeout

    def send(self, mail: Mail) -> None:
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message.set_content(mail.text)
        try:
            with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
                if self._starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self._username:
                    smtp.login(self._username, self._password)
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            # The reason goes to the logs, never to the caller.
            log.warning("mail not sent", exc_info=True, extra={"smtp_host": self._host, "smtp_port": self._port})
            raise DependencyDown("mail could not be sent; try again later") from exc


class NoMailer:
    """Production without SMTP settings: mail would otherwise land on an instance's disk unseen."""

    def send(self, mail: Mail) -> None:
        raise RuntimeError("production sends mail through SMTP: set SEGOPS_MAILER=smtp and the smtp-password secret")


class DevMailbox:
    """Mails kept as JSON files under the data dir, listed newest first at `/dev/mailbox/`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()

    def send(self, mail: Mail) -> None:
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            # The timestamp prefix orders files; the uuid keeps two mails of one microsecond apart.
            name = f"{mail.sent_at.strftime('%Y%m%dT%H%M%S%f')}-{uuid.uuid4().hex[:8]}.json"
            (self.directory / name).write_bytes(orjson.dumps(mail.model_dump(mode="json")))

    def mails(self) -> list[Mail]:
        if not self.directory.is_dir():
            return []
        files = sorted(self.directory.glob("*.json"), reverse=True)
        return [Mail.model_validate(orjson.loads(path.read_bytes())) for path in files]
