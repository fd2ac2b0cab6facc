"""Each transport against a local server that speaks its protocol (no broker, no database)."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from services.notifier.render import Email
from services.notifier.transports import discord, resend, slack, smtp
from shared.errors import PermanentError, TransientError
from tests.support.fakes.discord import FakeDiscord
from tests.support.fakes.resend import FakeResend
from tests.support.fakes.slack import FakeSlack
from tests.support.processes import free_port

MESSAGE = Email(
    subject="[herald] daily failed", html="<p>it &amp; failed</p>", text="it & failed\n"
)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


@pytest.fixture
def fake_resend() -> Iterator[FakeResend]:
    with FakeResend() as fake:
        yield fake


async def send_email(http: httpx.AsyncClient, fake: FakeResend, key: str, **changes: Any) -> str:
    values: dict[str, Any] = {
        "base_url": fake.url,
        "api_key": fake.api_key,
        "sender": "herald <h@herald.test>",
        "recipient": "ada@example.com",
        "email": MESSAGE,
        "idempotency_key": key,
        **changes,
    }
    return await resend.send(http, **values)


async def test_resend_sends_once_per_idempotency_key(
    http: httpx.AsyncClient, fake_resend: FakeResend
) -> None:
    first = await send_email(http, fake_resend, "herald-k1")
    again = await send_email(http, fake_resend, "herald-k1")

    assert first == again
    assert len(fake_resend.sent) == 1
    sent = fake_resend.sent[0]
    assert sent["to"] == ["ada@example.com"]
    assert (sent["subject"], sent["html"], sent["text"]) == (
        MESSAGE.subject,
        MESSAGE.html,
        MESSAGE.text,
    )
    assert fake_resend.requests[0]["headers"]["authorization"] == "Bearer re_test_key"


async def test_resend_refuses_a_reused_key_with_another_body(
    http: httpx.AsyncClient, fake_resend: FakeResend
) -> None:
    await send_email(http, fake_resend, "herald-k2")

    with pytest.raises(PermanentError, match="409 invalid_idempotent_request"):
        await send_email(http, fake_resend, "herald-k2", recipient="bob@example.com")
    assert len(fake_resend.sent) == 1


async def test_resend_rate_limit_is_transient_with_its_wait(
    http: httpx.AsyncClient, fake_resend: FakeResend
) -> None:
    fake_resend.fail_next(429, "rate_limit_exceeded", retry_after=2)

    with pytest.raises(TransientError) as caught:
        await send_email(http, fake_resend, "herald-k3")
    assert caught.value.retry_after == 2.0
    # Not remembered: the retry with the same key sends.
    await send_email(http, fake_resend, "herald-k3")
    assert len(fake_resend.sent) == 1


async def test_resend_rate_limit_from_its_request_rate(http: httpx.AsyncClient) -> None:
    with FakeResend(rate_per_second=2) as fake:
        await send_email(http, fake, "a")
        await send_email(http, fake, "b")
        with pytest.raises(TransientError, match="rate_limit_exceeded") as caught:
            await send_email(http, fake, "c")
    assert caught.value.retry_after == 1.0


@pytest.mark.parametrize("name", ["daily_quota_exceeded", "monthly_quota_exceeded"])
async def test_resend_quota_errors_are_permanent(
    http: httpx.AsyncClient, fake_resend: FakeResend, name: str
) -> None:
    fake_resend.fail_next(429, name)

    with pytest.raises(PermanentError, match=name):
        await send_email(http, fake_resend, "herald-q")


async def test_resend_daily_quota_counts_sends(http: httpx.AsyncClient) -> None:
    with FakeResend(daily_quota=1) as fake:
        await send_email(http, fake, "one")
        with pytest.raises(PermanentError, match="daily_quota_exceeded"):
            await send_email(http, fake, "two")


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"api_key": "re_wrong"}, "403 invalid_api_key"),
        ({"sender": ""}, "422 missing_required_field"),
        ({"idempotency_key": ""}, "400 invalid_idempotency_key"),
    ],
)
async def test_resend_client_errors_are_permanent(
    http: httpx.AsyncClient, fake_resend: FakeResend, changes: dict[str, Any], match: str
) -> None:
    with pytest.raises(PermanentError, match=match):
        await send_email(http, fake_resend, "herald-e", **changes)


async def test_resend_server_errors_and_unreachable_are_transient(
    http: httpx.AsyncClient, fake_resend: FakeResend
) -> None:
    fake_resend.fail_next(500, "internal_server_error")
    with pytest.raises(TransientError, match="500 internal_server_error"):
        await send_email(http, fake_resend, "herald-5")
    with pytest.raises(TransientError, match="Resend unreachable: ConnectError"):
        await send_email(http, fake_resend, "x", base_url=f"http://127.0.0.1:{free_port()}")


SLACK_PAYLOAD = {
    "text": "daily failed",
    "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*x*"}}],
}


async def test_slack_accepts_a_message(http: httpx.AsyncClient) -> None:
    with FakeSlack() as fake:
        await slack.send(http, fake.webhook(), SLACK_PAYLOAD)
    assert fake.received == [SLACK_PAYLOAD]


async def test_slack_errors_are_plain_text_and_never_show_the_url(http: httpx.AsyncClient) -> None:
    with FakeSlack() as fake:
        url = fake.webhook()
        revoked = url.replace("XXXX", "YYYY")
        with pytest.raises(PermanentError, match="Slack 404 no_service") as caught:
            await slack.send(http, revoked, SLACK_PAYLOAD)
        assert "YYYY" not in str(caught.value)
        with pytest.raises(PermanentError, match="Slack 400 no_text"):
            await slack.send(http, url, {})
        too_long = {"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "a" * 3001}}]}
        with pytest.raises(PermanentError, match="Slack 400 invalid_blocks"):
            await slack.send(http, url, too_long)
        fake.fail_next(410, "channel_is_archived")
        with pytest.raises(PermanentError, match="410 channel_is_archived"):
            await slack.send(http, url, SLACK_PAYLOAD)
        fake.fail_next(500, "rollup_error")
        with pytest.raises(TransientError, match="500 rollup_error"):
            await slack.send(http, url, SLACK_PAYLOAD)


async def test_slack_rate_limit_carries_retry_after(http: httpx.AsyncClient) -> None:
    with FakeSlack(rate_per_second=1) as fake:
        url = fake.webhook()
        await slack.send(http, url, SLACK_PAYLOAD)
        with pytest.raises(TransientError, match="429") as caught:
            await slack.send(http, url, SLACK_PAYLOAD)
    assert caught.value.retry_after == 1.0


DISCORD_PAYLOAD = {
    "content": "daily failed",
    "embeds": [{"title": "daily failed", "description": "x"}],
}


async def test_discord_accepts_a_message_and_pings_nobody(http: httpx.AsyncClient) -> None:
    with FakeDiscord() as fake:
        await discord.send(http, fake.webhook(), DISCORD_PAYLOAD)
        await discord.send(http, fake.webhook() + "?wait=true", DISCORD_PAYLOAD)
    assert len(fake.received) == 2
    assert fake.received[0]["allowed_mentions"] == {"parse": []}


async def test_discord_rate_limit_uses_the_bodys_float(http: httpx.AsyncClient) -> None:
    with FakeDiscord() as fake:
        fake.rate_limit_next(0.337)
        with pytest.raises(TransientError, match="You are being rate limited") as caught:
            await discord.send(http, fake.webhook(), DISCORD_PAYLOAD)
    assert caught.value.retry_after == 0.337


async def test_discord_errors(http: httpx.AsyncClient) -> None:
    with FakeDiscord() as fake:
        url = fake.webhook()
        with pytest.raises(PermanentError, match="Discord 404 10015: Unknown Webhook"):
            await discord.send(http, url + "x", DISCORD_PAYLOAD)
        with pytest.raises(PermanentError, match="Discord 400 50006"):
            await discord.send(http, url, {"content": ""})
        with pytest.raises(PermanentError, match="50035: Invalid Form Body"):
            await discord.send(http, url, {"content": "a" * 2001})
        fake.fail_next(502, 0, "Bad Gateway")
        with pytest.raises(TransientError, match="Discord 502"):
            await discord.send(http, url, DISCORD_PAYLOAD)


class Mailbox:
    def __init__(self, refuse: dict[str, str] | None = None) -> None:
        self.messages: list[tuple[Envelope, email.message.EmailMessage]] = []
        self.refuse = refuse or {}

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: Any, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: Any, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or b""
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        self.messages.append((envelope, parsed))
        return "250 Message accepted"


def authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"herald", b"s3cret")
    if ok:
        return AuthResult(success=True)
    return AuthResult(success=False, handled=False, message="535 5.7.8 Authentication failed")


def self_signed(tmp: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a fresh certificate for 127.0.0.1, and a client context trusting it."""
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=str(cert_path))
    return server, client


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox(
        refuse={
            "gone@example.com": "550 5.1.1 no such user",
            "later@example.com": "451 4.3.0 try later",
        }
    )
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


async def test_smtp_delivers_a_multipart_message(mailbox: tuple[Mailbox, int]) -> None:
    box, port = mailbox
    server = smtp.SmtpServer(host="127.0.0.1", port=port, tls="none", timeout=5)

    await smtp.send(
        server,
        sender="herald <h@herald.test>",
        recipient="ada@example.com",
        email=MESSAGE,
        message_id="<k1@herald.test>",
    )

    [(envelope, message)] = box.messages
    assert envelope.mail_from == "h@herald.test"
    assert envelope.rcpt_tos == ["ada@example.com"]
    assert message["Subject"] == MESSAGE.subject
    assert message["Message-ID"] == "<k1@herald.test>"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    assert text.get_content().replace("\r\n", "\n") == MESSAGE.text
    assert html.get_content().strip() == MESSAGE.html


async def test_smtp_refusals_are_permanent_or_transient_by_code(
    mailbox: tuple[Mailbox, int],
) -> None:
    _, port = mailbox
    server = smtp.SmtpServer(host="127.0.0.1", port=port, tls="none", timeout=5)

    with pytest.raises(PermanentError, match="550"):
        await smtp.send(
            server,
            sender="h@herald.test",
            recipient="gone@example.com",
            email=MESSAGE,
            message_id="<a@h>",
        )
    with pytest.raises(TransientError, match="451"):
        await smtp.send(
            server,
            sender="h@herald.test",
            recipient="later@example.com",
            email=MESSAGE,
            message_id="<b@h>",
        )
    with pytest.raises(TransientError, match="SMTP unreachable"):
        await smtp.send(
            smtp.SmtpServer(host="127.0.0.1", port=free_port(), tls="none", timeout=2),
            sender="h@herald.test",
            recipient="a@example.com",
            email=MESSAGE,
            message_id="<c@h>",
        )


@pytest.mark.parametrize("mode", ["starttls", "tls"])
async def test_smtp_over_tls_with_login(tmp_path: Path, mode: smtp.TlsMode) -> None:
    server_tls, client_tls = self_signed(tmp_path)
    box = Mailbox()
    port = free_port()
    if mode == "starttls":
        controller = Controller(
            box,
            hostname="127.0.0.1",
            port=port,
            tls_context=server_tls,
            require_starttls=True,
            authenticator=authenticator,
        )
    else:
        controller = Controller(
            box,
            hostname="127.0.0.1",
            port=port,
            ssl_context=server_tls,
            authenticator=authenticator,
            # aiosmtpd counts only STARTTLS as TLS; this connection is TLS from the start.
            auth_require_tls=False,
        )
    controller.start()
    try:
        server = smtp.SmtpServer(
            host="127.0.0.1",
            port=port,
            tls=mode,
            username="herald",
            password="s3cret",
            timeout=5,
            tls_context=client_tls,
        )
        await smtp.send(
            server,
            sender="h@herald.test",
            recipient="ada@example.com",
            email=MESSAGE,
            message_id="<t@h>",
        )
        wrong = smtp.SmtpServer(
            host="127.0.0.1",
            port=port,
            tls=mode,
            username="herald",
            password="nope",
            timeout=5,
            tls_context=client_tls,
        )
        with pytest.raises(PermanentError, match="535"):
            await smtp.send(
                wrong,
                sender="h@herald.test",
                recipient="ada@example.com",
                email=MESSAGE,
                message_id="<u@h>",
            )
    finally:
        controller.stop()
    assert len(box.messages) == 1
