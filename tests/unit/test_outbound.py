"""The outbound guard's rules: which addresses, origins and webhook URLs herald refuses."""

from __future__ import annotations

import ipaddress

import pytest

from shared.destinations import webhook_refusal
from shared.outbound import (
    ForbiddenDestinationError,
    OriginAllowList,
    origin_of,
    parse_networks,
    refusal,
    same_origin,
)
from shared.settings import Settings

SLACK = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"
DISCORD = "https://discord.com/api/webhooks/123/SECRET-token_1"


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("fe80::1", "link-local"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("fd12:3456::1", "unique-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("100.64.0.1", "not publicly routable"),  # carrier-grade NAT
        ("192.0.2.1", "private"),  # documentation
        ("240.0.0.1", "private"),  # reserved
    ],
)
def test_internal_addresses_are_refused(address: str, reason: str) -> None:
    refused = refusal(ipaddress.ip_address(address))
    assert refused is not None
    assert reason in refused


@pytest.mark.parametrize("address", ["140.82.112.5", "8.8.8.8", "2606:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


def test_the_operators_networks_are_allowed_and_nothing_more() -> None:
    allowed = parse_networks(["10.1.0.0/16", "127.0.0.1"])

    assert refusal(ipaddress.ip_address("10.1.2.3"), allowed) is None
    assert refusal(ipaddress.ip_address("127.0.0.1"), allowed) is None
    assert refusal(ipaddress.ip_address("::ffff:127.0.0.1"), allowed) is None
    assert refusal(ipaddress.ip_address("10.2.0.1"), allowed) == "a private address"
    assert refusal(ipaddress.ip_address("127.0.0.2"), allowed) == "a loopback address"


def test_origins_compare_scheme_host_and_port() -> None:
    assert origin_of("https://API.GitHub.com./repos") == origin_of("https://api.github.com:443")
    assert str(origin_of("http://[::1]:15672/api")) == "http://[::1]:15672"
    assert same_origin("https://api.github.com/repositories/1/commits", "https://api.github.com")
    assert not same_origin("http://api.github.com/x", "https://api.github.com")
    assert not same_origin("https://api.github.com:444/x", "https://api.github.com")
    assert not same_origin("https://api.github.com.evil.example/x", "https://api.github.com")
    assert not same_origin("ftp://api.github.com/x", "https://api.github.com")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:18750/api/v3", "allows (https://api.github.com"),
        ("http://169.254.169.254/latest/meta-data", "allows"),
        ("http://localhost:6379/", "allows"),
        ("http://[::1]:15672/api", "allows"),
        ("http://127.0.0.1:5432/", "allows"),
        ("http://api.github.com/", "allows"),  # the wrong scheme is another origin
        ("https://api.github.com@127.0.0.1/", "user name"),
        ("https://user:pass@api.github.com/", "user name"),
        ("https://api.github.com/?next=http://127.0.0.1/", "query"),
        ("https://api.github.com/#x", "query or fragment"),
        ("https://api.github.com/api/v3;x=1", "plain path"),
        ("https://api.github.com/%2e%2e/x", "plain path"),
        ("file:///etc/passwd", "http or https"),
        ("gopher://127.0.0.1:6379/", "http or https"),
        ("api.github.com", "http or https"),
    ],
)
def test_a_github_base_url_off_the_allow_list_is_refused(url: str, message: str) -> None:
    allowed = OriginAllowList(["https://api.github.com", "https://ghe.example.com"])

    with pytest.raises(ForbiddenDestinationError, match="githubBaseUrl") as refused:
        allowed.check_base(url, what="githubBaseUrl")

    assert message in refused.value.message


def test_an_allowed_base_url_is_returned_without_its_final_slash() -> None:
    allowed = OriginAllowList(["api.github.com", "https://ghe.example.com"])

    assert allowed.check_base("https://api.github.com/") == "https://api.github.com"
    assert allowed.check_base("https://ghe.example.com/api/v3/") == "https://ghe.example.com/api/v3"


@pytest.mark.parametrize(
    ("channel", "url"),
    [
        ("slack", SLACK + "\n"),  # a trailing newline
        ("slack", " " + SLACK),
        ("slack", SLACK.replace("https://", "http://")),
        ("slack", "https://hooks.slack.com.evil.example/services/T/B/X"),
        ("slack", "https://hooks.slack.com/api/T/B/X"),
        ("slack", "https://hooks.slack.com/services/T/B/X?redirect=http://127.0.0.1"),
        ("slack", "https://x@hooks.slack.com/services/T/B/X"),
        ("discord", "https://discord.com.evil.example/api/webhooks/1/x"),
        ("discord", "https://discord.com/api/webhooks/not-a-number/x"),
        ("discord", "https://discord.com/api/webhooks/1/x/../../users/@me"),
    ],
)
def test_a_webhook_url_off_its_service_is_refused_without_quoting_it(
    channel: str, url: str
) -> None:
    refused = webhook_refusal(channel, url, Settings())

    assert refused is not None
    assert "incoming-webhook URL" in refused
    assert "SECRET" not in refused and url.strip() not in refused


def test_the_services_own_webhook_urls_are_accepted() -> None:
    assert webhook_refusal("slack", SLACK, Settings()) is None
    assert webhook_refusal("discord", DISCORD, Settings()) is None
    assert webhook_refusal("discord", DISCORD.replace("/api/", "/api/v10/"), Settings()) is None
    assert (
        webhook_refusal("discord", DISCORD.replace("discord.com", "discordapp.com"), Settings())
        is None
    )


def test_an_operator_may_allow_another_webhook_origin() -> None:
    settings = Settings(slack_webhook_origins=["https://hooks.slack-gov.com"])

    assert webhook_refusal("slack", SLACK.replace("slack.com", "slack-gov.com"), settings) is None
    assert webhook_refusal("slack", SLACK, settings) is not None


def test_list_settings_read_json_or_commas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_OUTBOUND_ALLOW_NETWORKS", "10.0.0.0/8, 127.0.0.1")
    monkeypatch.setenv("HERALD_GITHUB_ENTERPRISE_ORIGINS", '["https://ghe.example.com"]')

    settings = Settings()

    assert settings.outbound_allow_networks == ["10.0.0.0/8", "127.0.0.1"]
    assert settings.github_enterprise_origins == ["https://ghe.example.com"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HERALD_OUTBOUND_ALLOW_NETWORKS", "10.0.0.0/33"),
        ("HERALD_SLACK_WEBHOOK_ORIGINS", "ftp://x"),
    ],
)
def test_a_bad_outbound_setting_stops_the_service_with_its_name(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)

    with pytest.raises(ValueError, match=name.removeprefix("HERALD_").lower()):
        Settings()
