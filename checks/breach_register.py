"""`breach_register`: every personal-data breach is assessed in time and none is overdue.

Reads the breach register of this product (AVG art. 33(5): every breach is documented; art. 33(1):
the authority is notified within 72 hours of becoming aware, unless the breach is unlikely to result
in a risk). Fails when a breach of the look-back period was assessed later than `assess_within` after
the municipality became aware of it (or is still unassessed past that time), or when an open breach
is past its 72-hour deadline without a notification or a decision not to notify. Withdrawn
notifications are left out. It sees only ids, times and states: no personal data.

Example::

    id: AVG-BREACHES
    title: Every breach is registered and assessed within 72 hours
    theme: organizational
    references: {avg: "33", iso27002: "5.26"}
    severity: critical
    owner: Privacy officer
    checks:
      - plugin: breach_register
        params: {assess_within: 72h}
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from compliance.api import Check, Context, Duration, Message, Params, Result, format_duration


class BreachRegisterParams(Params):
    assess_within: Duration = timedelta(hours=72)
    """How soon after becoming aware a breach must be assessed (the art. 33(1) window by default)."""
    lookback: Duration = timedelta(days=365)
    """Which breaches count: those the municipality became aware of within this period."""


class BreachRegister(Check):
    name = "breach_register"
    Params = BreachRegisterParams
    facts = ("breaches",)

    def run(self, params: BreachRegisterParams, ctx: Context) -> Iterator[Result]:
        target = "breach register"
        fact = ctx.facts.get("breaches")
        if fact is None:
            yield Result.errored(target, Message("The breach register could not be read."))
            return
        now = datetime.fromisoformat(fact["now"])
        breaches = [b for b in fact["breaches"] if not b["withdrawn"]
                    and now - datetime.fromisoformat(b["aware_at"]) <= params.lookback]
        late, overdue = [], []
        for b in breaches:
            aware = datetime.fromisoformat(b["aware_at"])
            assessed = datetime.fromisoformat(b["assessed_at"]) if b["assessed_at"] else None
            if (assessed or now) - aware > params.assess_within:
                late.append(b["id"])
            if b["clock"] == "overdue":
                overdue.append(b["id"])
        evidence = {"breaches": len(breaches), "assessed_late": late, "overdue": overdue,
                    "lookback_days": params.lookback.days}
        window = format_duration(params.assess_within)
        if overdue:
            yield Result.failed(target,
                            Message("%(count)d open breach(es) passed the 72-hour deadline without a notification or "
                                        "a decision not to notify: %(breaches)s.", count=len(overdue),
                                        breaches=", ".join(overdue)), **evidence)
        elif late:
            yield Result.failed(target,
                                Message("%(count)d of %(total)d breach(es) were not assessed within %(window)s: "
                                        "%(breaches)s.", count=len(late), total=len(breaches), window=window,
                                        breaches=", ".join(late)), **evidence)
        elif not breaches:
            yield Result.passed(target,
                                Message("No breaches were registered in the last %(days)d days; none is overdue.",
                                        days=params.lookback.days), **evidence)
        else:
            yield Result.passed(target,
                                Message("All %(total)d breach(es) of the last %(days)d days were assessed within "
                                        "%(window)s; none is overdue.", total=len(breaches), days=params.lookback.days,
                                        window=window), **evidence)
