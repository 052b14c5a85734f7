"""The digest on Slack: slack-sdk pointed at a local server that plays the Web API and an incoming webhook."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from compliance.digest import send_digest
from compliance.notify import slack
from compliance.notify.deliveries import Deliveries
from tests.compliance.notify_servers import SLACK_TOKEN, WEBHOOK_PATH, SlackServer, settings_for
from tests.compliance.report.conftest import NOW


@pytest.fixture
def server() -> Any:
    with SlackServer() as s:
        yield s


def within_limits(blocks: list[dict[str, Any]]) -> None:
    assert 0 < len(blocks) <= 50
    for block in blocks:
        texts = [block["text"]["text"]] if "text" in block else [e["text"] for e in block.get("elements", [])]
        assert all(len(t) <= (150 if block["type"] == "header" else 3000) for t in texts)


def test_a_bot_token_posts_blocks_to_the_channel_and_waits_out_a_rate_limit(
        tmp_path: Path, database: Any, seeded: None, server: SlackServer) -> None:
    settings = settings_for(
        tmp_path, database.url,
        f"slack:\n  mode: token\n  channel: '#management'\n  api_url: {server.api_url}\n"
        "digest:\n  lang: en\n  report_url: https://intranet.gemeente.example/compliance/{period}.html\n",
        COMPLIANCE_SLACK_TOKEN=SLACK_TOKEN)
    server.script.append((429, {"Retry-After": "1", "Content-Type": "application/json"},
                          '{"ok": false, "error": "ratelimited"}'))

    started = time.monotonic()
    [outcome] = send_digest(database, settings, channels=["slack"], now=NOW)

    assert time.monotonic() - started >= 1  # it waited as Slack asked
    assert (outcome.result, outcome.attempt, outcome.recipients) == ("sent", 1, 1)
    first, second = server.posts("api")
    assert first.body == second.body  # the same message, again after the 429
    assert second.headers["Authorization"] == f"Bearer {SLACK_TOKEN}"
    body = second.body
    assert body["channel"] == "#management"
    assert body["text"].startswith("Compliance digest, week 10, 2026: ")
    blocks = body["blocks"]
    within_limits(blocks)
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": "Compliance digest, week 10, 2026",
                                                    "emoji": False}}
    sections = "\n".join(b["text"]["text"] for b in blocks if b["type"] == "section")
    assert "• `A` Logging of security events: critical, failing for 13 days" in sections
    assert "DL-2026-0002, DL-2026-0003, DL-2026-0004" in sections
    assert blocks[-1]["elements"][0]["text"].startswith(
        "<https://intranet.gemeente.example/compliance/2026-W10.html|The full report> · ")
    [attempt] = Deliveries(database).attempts("digest", channel="slack")
    assert (attempt.result, attempt.recipients) == ("sent", 1)


def test_a_webhook_gets_the_digest_and_a_failure_is_recorded_without_its_url(
        tmp_path: Path, database: Any, seeded: None, server: SlackServer) -> None:
    settings = settings_for(tmp_path, database.url, "slack:\n  mode: webhook\n",
                            COMPLIANCE_SLACK_WEBHOOK_URL=server.webhook_url)
    server.script.append((500, {"Content-Type": "text/plain"}, f"internal error at {WEBHOOK_PATH}"))

    [failed] = send_digest(database, settings, channels=["slack"], now=NOW)
    assert failed.result == "failed"
    assert failed.error == "the Slack webhook answered HTTP 500: internal error at ***"
    [sent] = send_digest(database, settings, channels=["slack"], now=NOW)
    assert (sent.result, sent.attempt) == ("sent", 2)

    _first, second = server.posts("webhook")
    assert "Authorization" not in second.headers
    within_limits(second.body["blocks"])
    assert second.body["blocks"][0]["text"]["text"] == "Compliance-overzicht, week 10, 2026"
    assert all(WEBHOOK_PATH not in (a.error or "") for a in Deliveries(database).attempts())


def test_slack_refusing_the_message_is_a_failed_delivery(tmp_path: Path, database: Any, seeded: None,
                                                        server: SlackServer) -> None:
    settings = settings_for(tmp_path, database.url,
                            f"slack:\n  channel: '#nowhere'\n  api_url: {server.api_url}\n",
                            COMPLIANCE_SLACK_TOKEN=SLACK_TOKEN)
    server.script.append((200, {"Content-Type": "application/json"}, '{"ok": false, "error": "channel_not_found"}'))
    [outcome] = send_digest(database, settings, channels=["slack"], now=NOW)
    assert (outcome.result, outcome.error) == ("failed", "Slack refused the message for #nowhere: HTTP 200, "
                                                          "channel_not_found")


def test_blocks_stay_within_slacks_limits() -> None:
    long = slack.section("x" * 5000)
    assert len(long["text"]["text"]) == 3000 and long["text"]["text"].endswith("…")
    assert len(slack.header("y" * 400)["text"]["text"]) == 150
    assert len(slack.fit([slack.section(str(n)) for n in range(80)])) == 50
    from slack_sdk.errors import SlackObjectFormationError

    with pytest.raises(SlackObjectFormationError, match="cannot exceed 3000 characters"):
        slack.fit([{"type": "section", "text": {"type": "mrkdwn", "text": "z" * 3001}}])


def test_mrkdwn_from_data_cannot_make_links_or_mentions() -> None:
    assert slack.escape("<!channel> & <http://evil|click>") == "&lt;!channel&gt; &amp; &lt;http://evil|click&gt;"
