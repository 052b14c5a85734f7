"""Slack through slack-sdk: `chat.postMessage` with a bot token, or an incoming webhook.

Messages are Block Kit, kept within Slack's limits (`MAX_BLOCKS` blocks, `MAX_TEXT` characters per
text, `MAX_HEADER` per header) by `section`, `header` and `fit`, and always carry a plain `text` for
notifications. Rate limits (HTTP 429) are retried after the Retry-After Slack names, up to
`MAX_RETRY_AFTER` seconds (`CappedRateLimitHandler`); a longer wait is not waited for: the attempt
fails and the delivery is retried later with back-off, so a hostile or broken server cannot hold a
worker for hours. Connection errors are retried once. The SDK's own debug log, which would show the
webhook URL, is kept quiet. The token and the webhook URL go only over https, or plain http to a
loopback address (`compliance.notify.slack_configured`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from compliance.notify import DeliveryError, NotConfigured, slack_configured

if TYPE_CHECKING:
    from compliance.settings import Settings

MAX_BLOCKS = 50
MAX_TEXT = 3000
MAX_HEADER = 150
RATE_LIMIT_RETRIES = 3
#: The longest Retry-After (seconds) waited for; beyond it the attempt fails and is retried with back-off.
MAX_RETRY_AFTER = 60.0

_sdk_log = logging.getLogger("compliance.notify.slack_sdk")
_sdk_log.setLevel(logging.WARNING)


def escape(text: str) -> str:
    """Text for Slack mrkdwn: &, < and > as entities, so values cannot become links or mentions."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut(text: str, limit: int) -> str:
    """text shortened to limit characters, with an ellipsis when it was longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": cut(text, MAX_TEXT)}}


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": cut(text, MAX_HEADER), "emoji": False}}


def context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": cut(text, MAX_TEXT)}]}


def fit(blocks: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The blocks within Slack's limits: at most MAX_BLOCKS, every one valid by slack-sdk's own checks."""
    from slack_sdk.models.blocks import Block

    kept = list(blocks[:MAX_BLOCKS])
    for block in kept:
        parsed = Block.parse(block)
        if parsed is not None:
            parsed.validate_json()  # raises SlackObjectFormationError past a limit
    return kept


def retry_after(headers: dict[str, Any]) -> float | None:
    """The seconds a 429 answer asks to wait (Retry-After), None when it names none or no number."""
    for name, value in headers.items():
        if name.lower() == "retry-after":
            text = value[0] if isinstance(value, list | tuple) and value else value
            try:
                seconds = float(str(text).strip())
            except ValueError:
                return None  # an HTTP date, or garbage: wait the SDK's default second
            return seconds if seconds >= 0 and seconds == seconds else None  # not negative, not NaN
    return None


def _rate_limit_handler() -> Any:
    from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

    class CappedRateLimitHandler(RateLimitErrorRetryHandler):
        """slack-sdk's rate-limit retry, but never waiting longer than MAX_RETRY_AFTER seconds."""

        def _can_retry(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> bool:
            if response is None or response.status_code != 429:
                return False
            wait = retry_after(response.headers)
            return wait is None or wait <= MAX_RETRY_AFTER

        def prepare_for_next_attempt(self, *, state: Any, request: Any, response: Any = None,
                                     error: Any = None) -> None:
            import random
            import time

            if response is None:
                raise error
            state.next_attempt_requested = True
            wait = retry_after(response.headers)
            time.sleep(min(MAX_RETRY_AFTER, 1 + random.random() if wait is None else wait))
            state.increment_current_attempt()

    return CappedRateLimitHandler(max_retry_count=RATE_LIMIT_RETRIES)


def post(settings: Settings, text: str, blocks: Sequence[dict[str, Any]], *, channel: str | None = None) -> int:
    """Post a message: to `channel` (default slack.channel) with a token, or to the webhook's channel.

    Returns 1 (one channel). Raises NotConfigured or DeliveryError (naming Slack's answer, never the
    token or the webhook URL).
    """
    from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler

    problem = slack_configured(settings)
    if problem:
        raise NotConfigured(f"cannot post to Slack: {problem}")
    slack = settings.slack
    handlers = [ConnectionErrorRetryHandler(), _rate_limit_handler()]
    payload = fit(blocks)
    if slack.effective_mode == "token":
        target = channel or slack.channel
        if not target:
            raise NotConfigured("cannot post to Slack: slack.channel is not set (or COMPLIANCE_SLACK_CHANNEL)")
        return _post_with_token(settings, target, text, payload, handlers)
    return _post_to_webhook(settings, text, payload, handlers)


def _post_with_token(settings: Settings, channel: str, text: str, blocks: list[dict[str, Any]],
                     handlers: list[Any]) -> int:
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError, SlackClientError

    slack = settings.slack
    assert slack.token is not None
    client = WebClient(token=slack.token.get_secret_value(), base_url=slack.api_url, timeout=int(slack.timeout),
                       retry_handlers=handlers, logger=_sdk_log)
    try:
        client.chat_postMessage(channel=channel, text=text, blocks=blocks, unfurl_links=False)
    except SlackApiError as exc:
        response = exc.response
        reason = response.get("error") if isinstance(response.data, dict) else None
        raise DeliveryError(f"Slack refused the message for {channel}: HTTP {response.status_code}"
                            + (f", {reason}" if reason else "") + _long_wait(response.status_code, response.headers)) \
            from None
    except (SlackClientError, OSError) as exc:
        raise DeliveryError(f"cannot reach Slack at {slack.api_url}: {_reason(exc)}") from None
    return 1


def _post_to_webhook(settings: Settings, text: str, blocks: list[dict[str, Any]], handlers: list[Any]) -> int:
    from slack_sdk.errors import SlackClientError
    from slack_sdk.webhook import WebhookClient

    slack = settings.slack
    assert slack.webhook_url is not None
    client = WebhookClient(url=slack.webhook_url.get_secret_value(), timeout=int(slack.timeout),
                           retry_handlers=handlers, logger=_sdk_log)
    try:
        response = client.send(text=text, blocks=blocks, unfurl_links=False)
    except (SlackClientError, OSError) as exc:
        raise DeliveryError(f"cannot reach the Slack webhook: {_reason(exc)}") from None
    if response.status_code != 200:
        body = " ".join(str(response.body or "").split())[:200]
        raise DeliveryError(f"the Slack webhook answered HTTP {response.status_code}" + (f": {body}" if body else "")
                            + _long_wait(response.status_code, response.headers))
    return 1


def _long_wait(status: int, headers: dict[str, Any]) -> str:
    wait = retry_after(headers) if status == 429 else None
    if wait is None or wait <= MAX_RETRY_AFTER:
        return ""
    return f" (Retry-After {wait:g} s is longer than the {MAX_RETRY_AFTER:g} s waited at most; tried again later)"


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "reason", "") or exc).strip() or type(exc).__name__
