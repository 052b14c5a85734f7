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
control's title can be; the messages quote the English one.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

from pydantic import field_validator

from compliance.api import Check, Context, Duration, Params, Result, file_sha256, format_duration


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
    def requirement_text(self) -> str:
        """The requirement as the messages quote it: the English phrase, or the only one."""
        return self.requirement["en"] if isinstance(self.requirement, dict) else self.requirement


class Evidence(Check):
    name = "evidence"
    Params = EvidenceParams
    facts = ("attestation",)

    def run(self, params: EvidenceParams, ctx: Context) -> Iterator[Result]:
        fact = ctx.facts.get("attestation") or {}
        latest = fact.get("latest")
        today = date.fromisoformat(fact["today"]) if "today" in fact else ctx.now().date()
        attest = (f"record it with `compliance attest {ctx.control_id} --by NAME --evidence PATH_OR_URL "
                  "--valid-until YYYY-MM-DD`")
        target = "attestation"
        if latest is None:
            yield Result.failed(target, f"No evidence recorded for: {params.requirement_text}; {attest}.")
            return
        valid_until = date.fromisoformat(latest["valid_until"])
        recorded = datetime.fromisoformat(latest["recorded_at"])
        evidence = {**latest, "days_left": (valid_until - today).days}
        source = f"{latest['evidence']} by {latest['by']}"
        if valid_until < today:
            yield Result.failed(target, f"Evidence for '{params.requirement_text}' ({source}) expired on "
                                f"{valid_until.isoformat()}; renew it and {attest}.", **evidence)
            return
        if params.max_age is not None and ctx.now() - recorded > params.max_age:
            yield Result.failed(target, f"Evidence for '{params.requirement_text}' ({source}) was recorded on "
                                f"{recorded.date().isoformat()}, more than {format_duration(params.max_age)} "
                                f"ago; renew it and {attest}.", **evidence)
            return
        if latest.get("sha256"):
            path = latest["evidence"]
            try:
                current = file_sha256(path)
            except OSError as exc:
                yield Result.errored(target, f"Evidence file {path} cannot be read ({exc.strerror or exc}); "
                                     "it was attested but cannot be verified now.", **evidence)
                return
            if current != latest["sha256"]:
                yield Result.failed(target, f"Evidence file {path} changed since it was attested on "
                                    f"{recorded.date().isoformat()}; check the new version and {attest}.",
                                    **evidence, current_sha256=current)
                return
        yield Result.passed(target, f"Evidence for '{params.requirement_text}' ({source}) is valid until "
                            f"{valid_until.isoformat()}.", **evidence)

