"""A Report as one self-contained HTML page: tables and inline SVG charts, no script, no external resource.

The page is rendered by Jinja2 with autoescaping on, so group names from the log (user ids, metadata values)
are escaped by the template engine. Chart geometry is computed here; the template only places it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from cascadeflow.errors import MissingExtraError
from cascadeflow.reports.query import Report
from cascadeflow.reports.render import TABLE_FIGURES, money, share, table_rows

CHART_WIDTH = 640
BAR_HEIGHT = 18
LABEL_WIDTH = 200
MAX_BARS = 15
LINE_HEIGHT = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class Bar:
    label: str
    value_text: str
    y: float
    width: float


@dataclass(frozen=True, slots=True, kw_only=True)
class BarChart:
    title: str
    bars: tuple[Bar, ...]
    height: float
    label_width: int = LABEL_WIDTH
    width: int = CHART_WIDTH


@dataclass(frozen=True, slots=True, kw_only=True)
class LineChart:
    title: str
    points: str  # the SVG polyline points
    dots: tuple[tuple[float, float, str], ...]  # x, y, tooltip
    y_max_text: str
    first_label: str
    last_label: str
    width: int = CHART_WIDTH
    height: int = LINE_HEIGHT


def bar_chart(title: str, labels: Sequence[str], values: Sequence[float], texts: Sequence[str],
              top: float | None = None) -> BarChart:
    """Horizontal bars (at most MAX_BARS, in the given order) scaled to `top`, by default the largest value."""
    top = max((v for v in values[:MAX_BARS]), default=0.0) if top is None else top
    span = CHART_WIDTH - LABEL_WIDTH - 90
    bars = tuple(Bar(label=label[:40], value_text=text, y=i * (BAR_HEIGHT + 6),
                     width=span * v / top if top > 0 else 0.0)
                 for i, (label, v, text) in enumerate(zip(labels[:MAX_BARS], values[:MAX_BARS], texts[:MAX_BARS],
                                                          strict=True)))
    return BarChart(title=title, bars=bars, height=len(bars) * (BAR_HEIGHT + 6) + 4)


def line_chart(title: str, labels: Sequence[str], values: Sequence[float]) -> LineChart | None:
    """A line over ordered labels (days), the y axis from zero to the largest value."""
    if len(values) < 2:
        return None
    top = max(values) or 1.0
    left, right, pad = 60, CHART_WIDTH - 10, 20
    step = (right - left) / (len(values) - 1)
    coords = [(left + i * step, LINE_HEIGHT - pad - (LINE_HEIGHT - 2 * pad) * v / top) for i, v in enumerate(values)]
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    dots = tuple((x, y, f"{label}: {money(v)}") for (x, y), label, v in zip(coords, labels, values, strict=True))
    return LineChart(title=title, points=points, dots=dots, y_max_text=money(top), first_label=labels[0],
                     last_label=labels[-1])


def charts(report: Report, daily: Report | None) -> list[Any]:
    labels = [" / ".join(r.key) for r in report.rows]
    found: list[Any] = [bar_chart(f"cost by {', '.join(report.by)}", labels, [r.cost_usd for r in report.rows],
                                  [money(r.cost_usd) for r in report.rows])]
    accepted = [r for r in report.rows if r.acceptance is not None]
    if accepted:
        found.append(bar_chart("draft acceptance", [" / ".join(r.key) for r in accepted],
                               [r.acceptance or 0.0 for r in accepted], [share(r.acceptance) for r in accepted],
                               top=1.0))  # a share: a full bar is 100%
    if daily is not None:
        days = sorted(daily.rows, key=lambda r: r.key)
        line = line_chart("cost per day", [r.key[0] for r in days], [r.cost_usd for r in days])
        if line is not None:
            found.append(line)
    return found


TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:60rem}
table{border-collapse:collapse;margin:1rem 0}th,td{padding:.25rem .6rem;border-bottom:1px solid #ddd}
td.n,th.n{text-align:right}tr.total td{font-weight:bold;border-top:2px solid #444}
figure{margin:1.5rem 0}figcaption{font-weight:bold;margin-bottom:.4rem}
.bar{fill:#3b6ea8}.line{fill:none;stroke:#3b6ea8;stroke-width:2}.dot{fill:#3b6ea8}
.axis{stroke:#888}svg text{font-size:12px;fill:#222}
</style></head><body>
<h1>{{ title }}</h1>
<p>{{ summary }}</p>
{% if recommendations %}<h2>Recommendations</h2><ul>
{% for rec in recommendations %}<li>{{ rec }}</li>{% endfor %}</ul>{% endif %}
{% for chart in charts %}<figure><figcaption>{{ chart.title }}</figcaption>
{% if chart.bars is defined %}<svg xmlns="http://www.w3.org/2000/svg" width="{{ chart.width }}"
 height="{{ chart.height }}" role="img" aria-label="{{ chart.title }}">
{% for bar in chart.bars %}<text x="{{ chart.label_width - 6 }}" y="{{ bar.y + 13 }}" text-anchor="end">{{ bar.label }}</text>
<rect class="bar" x="{{ chart.label_width }}" y="{{ bar.y }}" width="{{ '%.1f' % bar.width }}" height="18"><title>{{ bar.label }}: {{ bar.value_text }}</title></rect>
<text x="{{ '%.1f' % (chart.label_width + bar.width + 6) }}" y="{{ bar.y + 13 }}">{{ bar.value_text }}</text>
{% endfor %}</svg>
{% else %}<svg xmlns="http://www.w3.org/2000/svg" width="{{ chart.width }}" height="{{ chart.height }}"
 role="img" aria-label="{{ chart.title }}">
<line class="axis" x1="60" y1="{{ chart.height - 20 }}" x2="{{ chart.width - 10 }}" y2="{{ chart.height - 20 }}"/>
<line class="axis" x1="60" y1="20" x2="60" y2="{{ chart.height - 20 }}"/>
<text x="54" y="24" text-anchor="end">{{ chart.y_max_text }}</text>
<text x="54" y="{{ chart.height - 20 }}" text-anchor="end">$0</text>
<text x="60" y="{{ chart.height - 4 }}">{{ chart.first_label }}</text>
<text x="{{ chart.width - 10 }}" y="{{ chart.height - 4 }}" text-anchor="end">{{ chart.last_label }}</text>
<polyline class="line" points="{{ chart.points }}"/>
{% for x, y, tip in chart.dots %}<circle class="dot" cx="{{ '%.1f' % x }}" cy="{{ '%.1f' % y }}" r="3"><title>{{ tip }}</title></circle>
{% endfor %}</svg>{% endif %}</figure>
{% endfor %}
<h2>By {{ by }}</h2>
<table><thead><tr>{% for name in header %}<th{% if loop.index > key_count %} class="n"{% endif %}>{{ name }}</th>{% endfor %}</tr></thead>
<tbody>{% for row in rows %}<tr{% if loop.last %} class="total"{% endif %}>{% for cell in row %}<td{% if loop.index > key_count %} class="n"{% endif %}>{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>
{% if anomalies %}<h2>Anomalies</h2><table><thead><tr><th>time</th><th>signal</th><th>key</th><th class="n">value</th><th class="n">score</th></tr></thead><tbody>
{% for a in anomalies %}<tr><td>{{ a.timestamp }}</td><td>{{ a.signal }}</td><td>{{ a.key }}</td><td class="n">{{ '%.6g' % a.value }}</td><td class="n">{{ '%.1f' % a.score }}</td></tr>
{% endfor %}</tbody></table>{% endif %}
<p><small>Sources: {{ sources }}. Generated {{ generated_at }}.</small></p>
</body></html>
"""


def to_html(report: Report, *, daily: Report | None = None, title: str | None = None,
            recommendations: Sequence[str] = ()) -> str:
    """The page: summary, recommendations, charts (cost and acceptance per group, cost per day when `daily`
    is given), the table and the anomaly events the log holds."""
    try:
        jinja2 = import_module("jinja2")
    except ImportError:
        raise MissingExtraError("HTML reports", "reports") from None
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    t = report.total
    summary = (f"{t.calls:,} calls cost {money(t.cost_usd)}; draft acceptance {share(t.acceptance)}; "
               f"{t.cache_hits:,} cache hits saved {money(t.cache_saved_usd)}")
    if t.savings_usd is not None:
        summary += f"; savings against {report.baseline_model}: {money(t.savings_usd)} ({share(t.savings_pct)})"
    span = "all records" if report.since is None and report.until is None else \
        f"{report.since or 'the first record'} to {report.until or 'the last record'}"
    anomalies = [a for a in report.anomalies if isinstance(a.get("value"), (int, float))
                 and isinstance(a.get("score"), (int, float))]
    return env.from_string(TEMPLATE).render(
        title=title or f"cascadeflow cost report ({span})", summary=summary + ".",
        recommendations=list(recommendations), charts=charts(report, daily), by=", ".join(report.by),
        header=[*report.by, *TABLE_FIGURES], rows=table_rows(report), key_count=len(report.by),
        anomalies=anomalies, sources=", ".join(report.sources), generated_at=report.generated_at)
