"""The trend chart: the compliance score over the last periods, as PNG (e-mail) or SVG (HTML and PDF).

Drawn with matplotlib's object API on the Agg canvas (no pyplot and no global state, so it is safe in
a daemon's threads). The background bands are the traffic-light thresholds; the bars are the number of
failing controls (accepted ones included).
"""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from compliance.report.overview import Overview

NAVY = "#154273"
BAR = "#9aa5b1"
ZONES = (("#c62828", 0.0, "amber_from"), ("#f9a825", "amber_from", "green_from"), ("#2e7d32", "green_from", 100.0))


def _figure(overview: Overview, lang: str) -> Any:
    import math

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle
    from matplotlib.ticker import FuncFormatter, MaxNLocator
    from matplotlib.transforms import blended_transform_factory

    from compliance.report import overview as figures
    from compliance.report.language import Formatter, gettext

    _ = gettext(lang)
    fmt = Formatter(lang, overview.timezone)
    points = overview.trend
    x = list(range(len(points)))
    scores = [math.nan if p.score.percent is None else p.score.percent for p in points]
    failing = [p.score.failing + p.score.accepted for p in points]

    fig = Figure(figsize=(7.4, 2.7), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    bars = fig.add_subplot()
    line = bars.twinx()
    # the score is what the chart is about: its axis on the left, drawn over the bars
    bars.yaxis.tick_right()
    bars.yaxis.set_label_position("right")
    line.yaxis.tick_left()
    line.yaxis.set_label_position("left")
    line.set_zorder(bars.get_zorder() + 1)
    line.patch.set_visible(False)
    # the traffic-light bands and the grid follow the score's scale but lie behind the bars
    behind = blended_transform_factory(bars.transAxes, line.transData)
    bounds = {"amber_from": figures.AMBER_FROM, "green_from": figures.GREEN_FROM}
    for colour, low, high in ZONES:
        bottom, top = bounds.get(str(low), low), bounds.get(str(high), high)
        bars.add_patch(Rectangle((0, float(bottom)), 1, float(top) - float(bottom), transform=behind,
                                 color=colour, alpha=0.07, lw=0, zorder=0))
    for level in (25, 50, 75, 100):
        bars.plot([0, 1], [level, level], transform=behind, color="#e3e7ec", lw=0.6, zorder=0.5)

    bars.bar(x, failing, color=BAR, width=0.55, label=_("Failing controls"), zorder=2)
    bars.set_ylim(0, max([*failing, 4]) * 1.6)
    bars.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
    bars.set_ylabel(_("Failing controls"), color="#5f6b77", fontsize=8)

    line.plot(x, scores, color=NAVY, marker="o", markersize=4, lw=2, label=_("Compliance (weighted)"))
    line.set_ylim(0, 105)
    line.set_yticks([0, 25, 50, 75, 100])
    line.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:.0f}%"))
    line.set_ylabel(_("Compliance"), color=NAVY, fontsize=8)
    last = next((i for i in reversed(x) if not math.isnan(scores[i])), None)
    if last is not None:
        line.annotate(fmt.percent(scores[last]), (last, scores[last]), textcoords="offset points", xytext=(0, 7),
                      ha="center", fontsize=8, color=NAVY, fontweight="bold")

    bars.set_xticks(x, [fmt.period_short(p.period) for p in points])
    bars.set_xlim(-0.6, len(points) - 0.4)
    for axis in (bars, line):
        axis.tick_params(labelsize=8, length=0)
        for side in ("top", "left", "right"):
            axis.spines[side].set_visible(False)
        axis.spines["bottom"].set_color("#c8c8c8")
    # the legend above the plot, where it cannot cover a bar or a point
    handles = [*line.get_legend_handles_labels()[0], *bars.get_legend_handles_labels()[0]]
    fig.legend(handles=handles, loc="outside upper left", fontsize=7.5, frameon=False, ncols=2)
    return fig


def trend_png(overview: Overview, lang: str = "nl", *, dpi: int = 150) -> bytes:
    """The trend chart as PNG, for e-mail (attach it and refer to it with `cid:`)."""
    buffer = io.BytesIO()
    _figure(overview, lang).savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


def trend_svg(overview: Overview, lang: str = "nl") -> str:
    """The trend chart as an `<svg>` element to put inline in HTML (it scales to the page width)."""
    from matplotlib import rc_context

    buffer = io.StringIO()
    with rc_context({"svg.hashsalt": "compliance-report", "svg.fonttype": "path"}):
        _figure(overview, lang).savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]  # drop the XML declaration and doctype: this goes inside HTML
    title = _title(overview, lang)
    return re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"',
                  lambda m: f'<svg{m.group(1)} width="100%" role="img" aria-label="{title}"', svg, count=1)


def _title(overview: Overview, lang: str) -> str:
    from markupsafe import escape

    from compliance.report.language import gettext

    return str(escape(gettext(lang)("Compliance over the last %(n)d periods") % {"n": len(overview.trend)}))
