"""Email over SMTP for self-hosters: STARTTLS (587), implicit TLS (465) or none; auth optional."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Literal

import aiosmtplib

from services.notifier.render import Email
from shared.errors import PermanentError, TransientError

TlsMode = Literal["starttls", "tls", "none"]
DEFAULT_PORTS: dict[str, int] = {"starttls": 587, "tls": 465, "none": 25}


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int = 0
    tls: TlsMode = "starttls"
    username: str = ""
    password: str = ""
    timeout: float = 30.0
    # Tests trust their own certificate through this; production uses the system store.
    tls_context: ssl.SSLContext | None = None

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_PORTS[self.tls]


def compose(*, sender: str, recipient: str, email: Email, message_id: str) -> EmailMessage:
    """Build a multipart/alternative message (text first, HTML preferred)."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = email.subject
    message["Date"] = formatdate(usegmt=True)
    # Stable per execution and recipient, so a receiver can spot a redelivered duplicate.
    message["Message-ID"] = message_id
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    return message


async def send(
    server: SmtpServer, *, sender: str, recipient: str, email: Email, message_id: str
) -> None:
    """Send one message; 5xx replies are permanent, 4xx and connection trouble transient."""
    message = compose(sender=sender, recipient=recipient, email=email, message_id=message_id)
    try:
        await aiosmtplib.send(
            message,
            hostname=server.host,
            port=server.effective_port,
            username=server.username or None,
            password=server.password or None,
            use_tls=server.tls == "tls",
            start_tls=server.tls == "starttls",
            tls_context=server.tls_context,
            timeout=server.timeout,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = [refused.code for refused in exc.recipients]
        text = "SMTP recipient refused: " + "; ".join(
            f"{r.recipient} {r.code} {r.message}" for r in exc.recipients
        )
        if any(code < 500 for code in codes):
            raise TransientError(text) from None
        raise PermanentError(text) from None
    except aiosmtplib.SMTPResponseException as exc:
        text = f"SMTP {exc.code}: {exc.message}"
        if exc.code >= 500:
            raise PermanentError(text) from None
        raise TransientError(text) from None
    except aiosmtplib.SMTPNotSupported as exc:
        raise PermanentError(f"SMTP server does not support it: {exc}") from None
    except OSError as exc:  # connection refused or reset, timeouts, TLS failures
        raise TransientError(f"SMTP unreachable: {type(exc).__name__}") from None
    except aiosmtplib.SMTPException as exc:
        raise TransientError(f"SMTP error: {exc}") from None
