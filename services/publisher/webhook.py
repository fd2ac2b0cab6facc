"""The generic webhook: a post for any platform herald has no protocol for, signed, once.

herald POSTs the post as JSON to the project's URL, signed as every delivery of herald's is
(`shared.signatures`), with a delivery id derived from the post's id: every attempt at one
post carries the same `X-Herald-Delivery`, so a receiver that already published it answers
again without posting a second time. A 2xx is published (the answer may name the post's
address: `{"url": ...}`); 429 pauses the target for every replica (`Retry-After`); 408, 425
and 5xx, or no answer, are tried again; any other status is the receiver's refusal, final.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx

from services.publisher.networks.budget import AccountBudget, RateLimit, fingerprint
from services.publisher.networks.published import (
    NetworkRefusedError,
    Published,
    excerpt,
    json_body,
    require_https,
    unreachable,
)
from shared.errors import PermanentError, TransientError
from shared.metrics import NETWORK_REQUESTS
from shared.outbound import parse_url
from shared.retry import wait_from_header
from shared.signatures import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, signature_of

NETWORK = "The webhook"
USER_AGENT = "herald-publisher (+https://github.com/herald)"


def delivery_id(post_id: str) -> str:
    """The delivery id of a post: the same for every attempt at it."""
    return f"herald-post-{post_id}"


class WebhookClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        url: str,
        secret: str,
        budget: AccountBudget,
        allow_http: bool = False,
    ) -> None:
        self.url = str(parse_url(url))
        require_https(self.url, what="the webhook", allow_http=allow_http)
        self._http = http
        self._secret = secret
        self._budget = budget
        self.budget_key = f"webhook:{fingerprint(self.url)}"

    async def publish(
        self,
        *,
        post_id: str,
        platform: str,
        title: str | None,
        text: str,
        project_id: str,
        execution_id: str,
    ) -> Published:
        delivery = delivery_id(post_id)
        body = json.dumps(
            {
                "deliveryId": delivery,
                "postId": post_id,
                "platform": platform,
                "title": title,
                "body": text,
                "projectId": project_id,
                "executionId": execution_id,
                # Signed with the rest: a receiver refuses a replay by its age.
                "sentAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            },
            separators=(",", ":"),
        ).encode()
        await self._budget.before_request(self.budget_key, network=NETWORK)
        try:
            response = await self._http.post(
                self.url,
                content=body,
                headers={
                    "Content-Type": "application/json",
                    "User-Agent": USER_AGENT,
                    SIGNATURE_HEADER: signature_of(self._secret, body),
                    DELIVERY_HEADER: delivery,
                    EVENT_HEADER: "post",
                },
            )
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            NETWORK_REQUESTS.labels("webhook", "unreachable").inc()
            raise unreachable(NETWORK, exc) from exc
        status = response.status_code
        if status == 429:
            NETWORK_REQUESTS.labels("webhook", "rate_limited").inc()
            raise await self._budget.limited(
                self.budget_key, RateLimit(None, None, None), response.headers, network=NETWORK
            )
        said = excerpt(response.text or response.reason_phrase)
        if 200 <= status < 300:
            NETWORK_REQUESTS.labels("webhook", "ok").inc()
            answered = json_body(response)
            url = answered.get("url")
            return Published(
                network="webhook",
                id=str(answered.get("id") or delivery),
                url=url if isinstance(url, str) and url.startswith(("https://", "http://")) else "",
            )
        NETWORK_REQUESTS.labels("webhook", "error").inc()
        message = f"the webhook answered {status}: {said}"
        if status in (408, 425) or status >= 500:
            raise TransientError(message, retry_after=wait_from_header(response.headers))
        if 300 <= status < 400:
            raise PermanentError(f"{message}: the webhook redirects; herald does not follow")
        raise NetworkRefusedError(message)
