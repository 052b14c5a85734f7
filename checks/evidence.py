"""`evidence`: a control that only people can show is met while its recorded attestation is valid.

For organisational controls: a policy approved by the board, a yearly risk analysis, the register of
processing activities, DPIAs, processor agreements, awareness training, a tested incident response
plan. Someone records the evidence with `compliance attest CONTROL --by NAME --evidence PATH_OR_URL
--valid-until DATE`; this check passes while the newest attestation is valid, and fails when there is
none, when it expired, when it is older than `max_age`, or when the attested file changed since (its
SHA-256 differs). A file that can no longer be read is an error: the check could not look.

Example::

    id: POLICY-01
    title: The information security policy is approved by the board and reviewed every year
    theme: organizational
    references: {bio2: "5.01.01", iso27002: "5.1"}
    severity: high
    owner: CISO
    checks:
      - plugin: evidence
        params:
          requirement:
            en: Information security policy approved by the college of B&W
            nl: Informatiebeveiligingsbeleid vastgesteld door het college van B&W
          max_age: 1y

`requirement` is one phrase, or a phrase per language (`en:` required, `nl:` beside it) as the
control's title can be; the messages quote it in the language they are shown in (English when a
phrase has no translation).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

from pydantic import field_validator

from compliance.api import Check, Context, Duration, Message, Params, Result, file_sha256, format_duration


class EvidenceParams(Params):
    requirement: str | dict[str, str]
    """What must be shown, in a phrase (or one per language, {en: ..., nl: ...}): it appears in every message."""
    max_age: Duration | None = None
    """Evidence recorded longer ago than this counts as expired, whatever its valid-until date."""

    @field_validator("requirement")
    @classmethod
    def _per_language(cls, value: Any) -> Any:
        if isinstance(value, dict):
            unknown = sorted(set(value) - {"en", "nl"})
            if unknown:
                raise ValueError(f"unknown language {', '.join(repr(k) for k in unknown)}; write it under en and nl")
            if "en" not in value:
                raise ValueError("a requirement per language needs at least the English one, under `en:`")
            if not all(text.strip() for text in value.values()):
                raise ValueError("each language's requirement must be a non-empty phrase")
        elif not value.strip():
            raise ValueError("say what evidence satisfies the control")
        return value

    @property
    def requirement_phrase(self) -> str | dict[str, str]:
        """The requirement as a message parameter: one phrase, or a phrase per language."""
        return dict(self.requirement) if isinstance(self.requirement, dict) else self.requirement


class Evidence(Check):
    name = "evidence"
    Params = EvidenceParams
    facts = ("attestation",)

    def run(self, params: EvidenceParams, ctx: Context) -> Iterator[Result]:
        fact = ctx.facts.get("attestation") or {}
        latest = fact.get("latest")
        today = date.fromisoformat(fact["today"]) if "today" in fact else ctx.now().date()
        attest = Message("record it with `compliance attest %(control)s --by NAME --evidence PATH_OR_URL "
                         "--valid-until YYYY-MM-DD`", control=ctx.control_id)
        requirement = params.requirement_phrase
        target = "attestation"
        if latest is None:
            yield Result.failed(target, Message("No evidence recorded for: %(requirement)s; %(attest)s.",
                                                requirement=requirement, attest=attest))
            return
        valid_until = date.fromisoformat(latest["valid_until"])
        recorded = datetime.fromisoformat(latest["recorded_at"])
        evidence = {**latest, "days_left": (valid_until - today).days}
        source = Message("%(evidence)s by %(by)s", evidence=latest["evidence"], by=latest["by"])
        if valid_until < today:
            yield Result.failed(target, Message("Evidence for '%(requirement)s' (%(source)s) expired on %(day)s; "
                                                "renew it and %(attest)s.", requirement=requirement, source=source,
                                                day=valid_until.isoformat(), attest=attest), **evidence)
            return
        if params.max_age is not None and ctx.now() - recorded > params.max_age:
            yield Result.failed(target, Message("Evidence for '%(requirement)s' (%(source)s) was recorded on "
                                                "%(day)s, more than %(max_age)s ago; renew it and %(attest)s.",
                                                requirement=requirement, source=source,
                                                day=recorded.date().isoformat(),
                                                max_age=format_duration(params.max_age), attest=attest), **evidence)
            return
        if latest.get("sha256"):
            path = latest["evidence"]
            try:
                current = file_sha256(path)
            except OSError as exc:
                # the system's reason (strerror) is shown as the system gives it
                yield Result.errored(target, Message("Evidence file %(path)s cannot be read (%(reason)s); it was "
                                                     "attested but cannot be verified now.", path=path,
                                                     reason=str(exc.strerror or exc)), **evidence)
                return
            if current != latest["sha256"]:
                yield Result.failed(target, Message("Evidence file %(path)s changed since it was attested on %(day)s; "
                                                    "check the new version and %(attest)s.", path=path,
                                                    day=recorded.date().isoformat(), attest=attest),
                                    **evidence, current_sha256=current)
                return
        yield Result.passed(target, Message("Evidence for '%(requirement)s' (%(source)s) is valid until %(day)s.",
                                            requirement=requirement, source=source, day=valid_until.isoformat()),
                            **evidence)

