"""Reports: the risk overview for management (this package's public surface) and the statement of
applicability (`compliance.report.soa`).

The risk overview is one query layer, then JSON, charts and HTML/PDF/Markdown in Dutch and English.

The public surface, also for the weekly digest:

- `build_overview(database, period="week", as_of=day, zone=zone) -> Overview`: every figure, typed
  (`Overview.to_json()` is the documented JSON contract);
- `trend_png(overview, lang) -> bytes` (for e-mail, `cid:`) and `trend_svg(overview, lang) -> str` (for
  HTML and PDF): the trend chart;
- `render(overview, fmt, lang) -> bytes | str` for `html`, `pdf`, `md` and `json`, and `render_html`
  with `chart_src=` to point the chart at an e-mail attachment instead of inline SVG.

Importing this package is cheap: Jinja2, Babel, matplotlib and WeasyPrint are imported when used.
"""

from compliance.report.breaches import IncidentFigures
from compliance.report.charts import trend_png, trend_svg
from compliance.report.language import LANGUAGES
from compliance.report.overview import (
    Changes,
    ControlChange,
    CouldNotRun,
    ExceptionRef,
    ExpiringException,
    FailingTarget,
    NotEvaluated,
    Overview,
    Risk,
    Score,
    ThemeFigures,
    TrendPoint,
    build_overview,
)
from compliance.report.periods import PERIOD_KINDS, Period
from compliance.report.rendering import (
    FORMATS,
    PdfUnavailable,
    render,
    render_html,
    render_markdown,
    render_pdf,
)

__all__ = [
    "FORMATS",
    "LANGUAGES",
    "PERIOD_KINDS",
    "Changes",
    "ControlChange",
    "CouldNotRun",
    "ExceptionRef",
    "ExpiringException",
    "FailingTarget",
    "IncidentFigures",
    "NotEvaluated",
    "Overview",
    "PdfUnavailable",
    "Period",
    "Risk",
    "Score",
    "ThemeFigures",
    "TrendPoint",
    "build_overview",
    "render",
    "render_html",
    "render_markdown",
    "render_pdf",
    "trend_png",
    "trend_svg",
]
