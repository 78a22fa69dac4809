"""The dashboard page: environments with live per-instance figures, the month's bill, releases and events."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Any

import jinja2

from sprout.dashboard import views
from sprout.dashboard.sessions import LOGS, PAGE
from sprout.healthcheck import describe_check
from sprout.report import fleet_summary, number, share
from sprout.terminal import printable

#: Seconds between the page's own reloads (and so the window its live figures cover).
REFRESH = 5
#: Rows of the events table once routine runs are folded.
EVENT_ROWS = 15
#: Lines of an instance's log view.
LOG_LINES = 200

#: The page's only inline code: its style sheet, allowed by hash in the Content-Security-Policy.
STYLE = """body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d2a1f; }
h1 { font-size: 1.3rem; } h2 { font-size: 1.1rem; margin-top: 1.8rem; }
table { border-collapse: collapse; margin: .4rem 0 1rem; }
th, td { padding: .2rem .7rem; text-align: left; border-bottom: 1px solid #dde5dc; }
th { background: #eef4ec; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
td.t { white-space: nowrap; } .ok { color: #1b7a2f; } .bad { color: #b3261e; font-weight: 600; } .muted { color: #6b766c; }
"""

_TEMPLATE = (
    """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="{{ refresh }}">
<title>Sprout dashboard</title>
<style>"""
    + STYLE
    + """</style>
</head>
<body>
<h1>Sprout</h1>
<p class="muted">daemon pid {{ daemon.pid }}, up {{ "%.0f"|format(daemon.uptime or 0) }} s; router {{ report.router }};
live figures over the last {{ "%.1f"|format(report.window) }} s; this page reloads every {{ refresh }} s.</p>
{% if (daemon.disk or {}).full_since %}<p class="bad">disk full since {{ when(daemon.disk.full_since) }}: app output and access-log rows are dropped; free space under SPROUT_HOME</p>{% endif %}
<p>loops: {% for l in daemon.loops or [] %}<span class="{{ 'bad' if l.stalled else 'ok' }}" title="{{ l.last_error or '' }}">{{ l.name }} {{ "stalled" if l.stalled else "ok" }}</span>{{ ", " if not loop.last }}{% endfor %}</p>
{% for e in report.environments %}
<h2>{{ e.app }}/{{ e.env }} — version {{ e.version or "-" }} —
<span class="{{ 'ok' if e.healthy >= e.desired else 'bad' }}">{{ summary(e) }}</span></h2>
<p>{% if e.url %}<a href="{{ e.url }}">{{ e.url }}</a>{% endif %}
{% for g in groups[e.app ~ '/' ~ e.env] %} · group {{ g.name }} {{ g.version }} {% if g.name in warm[e.app ~ '/' ~ e.env] %}warm at 0% until {{ clock(warm[e.app ~ '/' ~ e.env][g.name]) }} (instant rollback){% else %}at {{ g.weight }}%{% endif %}{% endfor %}
· {{ "%.1f"|format(e.total.rps) }} req/s</p>
<table>
<tr><th>instance</th><th>zone</th><th>version</th><th>state</th><th>router</th><th>req/s</th>
<th>2xx</th><th>3xx</th><th>4xx</th><th>5xx</th><th>p50 ms</th><th>p99 ms</th><th>in flight</th></tr>
{% for row in e.instances + [dict(e.total, id="total")] %}
<tr><td>{% if row.id != "total" %}<a href="{{ logs_page }}?instance={{ row.id|urlencode }}" title="this instance's log">{{ row.id }}</a>{% else %}total{% endif %}</td><td>{{ row.zone or "" }}</td><td>{{ row.version or "" }}</td>
<td class="{{ 'ok' if row.health == 'healthy' else ('bad' if row.health else '') }}"{% if row.check %} title="last check: {{ check(row.check) }}"{% endif %}>{{ row.state or "" }} {{ row.health or "" }}{% if row.check and not row.check.ok %}<br><span class="bad">last check: {{ check(row.check) }}</span>{% endif %}</td>
<td class="{{ 'ok' if row.router_state == 'healthy' else ('bad' if row.router_state else '') }}">{{ row.router_state or ("" if row.id == "total" else "unrouted") }}</td>
<td class="n">{{ num(row.rps, 1) }}</td>
{% for c in ("2xx", "3xx", "4xx", "5xx") %}<td class="n{{ ' bad' if c == '5xx' and (row.percent or {}).get(c) }}">{{ pct((row.percent or {}).get(c)) }}</td>{% endfor %}
<td class="n">{{ num(row.p50_ms, 1) }}</td><td class="n">{{ num(row.p99_ms, 1) }}</td><td class="n">{{ num(row.in_flight, 0) }}</td></tr>
{% endfor %}
</table>
{% else %}
<p>No environments yet: create one with <code>sprout up</code>.</p>
{% endfor %}
<h2>Bill</h2>
<p>{{ money(bill.spend) }} {{ bill.currency }} this month so far ({{ "%.1f"|format(bill.instance_seconds / 3600) }} instance-hours since {{ day(bill.since) }});
projected {{ money(bill.projected_month) }} {{ bill.currency }} for the month (spent so far + {{ money(bill.rate_per_hour) }} {{ bill.currency }}/h observed x {{ "%.0f"|format(bill.hours_left_in_month) }} h left).
A fleet fixed at each environment's peak would have cost {{ money(bill.fixed_peak_spend) }} {{ bill.currency }}:
autoscaling saved {{ money(bill.savings) }} {{ bill.currency }}{% if bill.fixed_peak_spend %} ({{ "%.0f"|format(100 * bill.savings / bill.fixed_peak_spend) }}%){% endif %}{% if bill.above_desired_spend %}; {{ money(bill.above_desired_spend) }} {{ bill.currency }} went to instances beyond desired capacity (release overlap, warm fleets){% endif %}. <span class="muted">(<code>sprout cost --advise</code> for details and advice)</span></p>
<h2>Releases</h2>
{% if releases %}<table>
<tr><th>#</th><th>environment</th><th>version</th><th>strategy</th><th>state</th><th>outcome</th><th>started</th><th>by</th><th>reason</th></tr>
{% for d in releases %}<tr><td>{{ d.id }}</td><td>{{ d.app }}/{{ d.env }}</td><td>{{ d.version }}</td><td>{{ d.strategy }}</td>
<td>{{ d.state }}</td><td class="{{ 'bad' if d.outcome and d.outcome not in ('succeeded', 'instant') }}">{{ d.outcome or "" }}</td>
<td class="t">{{ when(d.started_at) }}</td><td>{{ d.user }}</td><td>{{ d.reason or "" }}</td></tr>
{% endfor %}</table>{% else %}<p class="muted">none yet</p>{% endif %}
<h2>Events</h2>
{% if events %}<table>
<tr><th>time</th><th>environment</th><th>kind</th><th>what</th></tr>
{% for ev in events %}<tr><td class="t">{{ when(ev.time) }}</td><td>{{ ev.app or "" }}{{ "/" ~ ev.env if ev.env }}</td><td>{{ ev.kind }}</td><td>{{ ev.message }}{% if ev.count > 1 %} <span class="muted">(and {{ ev.count - 1 }} more like it since {{ clock(ev.first) }})</span>{% endif %}</td></tr>
{% endfor %}</table>{% else %}<p class="muted">none yet</p>{% endif %}
</body>
</html>
"""
)

_LOG_TEMPLATE = (
    """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Sprout: {{ instance }} log</title>
<style>"""
    + STYLE
    + """</style>
</head>
<body>
<h1>Sprout — log of {{ instance }}</h1>
<p><a href="{{ page }}">back to the dashboard</a> · the last {{ lines|length }} lines, newest last
(<code>sprout logs --instance {{ instance }} -f</code> follows it)</p>
{% if lines %}<table>
<tr><th>time</th><th>version</th><th>stream</th><th>line</th></tr>
{% for line in lines %}<tr><td class="t">{{ when(line.ts) }}</td><td>{{ line.version or "-" }}</td><td>{{ line.stream }}</td><td><code>{{ text(line.msg) }}</code></td></tr>
{% endfor %}</table>{% else %}<p class="muted">no lines from this instance in the log store</p>{% endif %}
</body>
</html>
"""
)

#: Headers of every dashboard response: no script at all, the style by hash, never framed, no referrer.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; "
        f"style-src 'sha256-{base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()}'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}

_env = jinja2.Environment(autoescape=True)
_env.globals.update(dict=dict)
_page = _env.from_string(_TEMPLATE)
_log_page = _env.from_string(_LOG_TEMPLATE)


def render(
    report: dict[str, Any],
    health: dict[str, Any],
    deployments: list[dict[str, Any]],
    events: list[dict[str, Any]],
    bill: dict[str, Any],
    rollbacks: list[dict[str, Any]],
) -> str:
    """The page for a live report (`health_report`), the health document it came from, releases with the
    instant rollbacks among them, events and the bill."""
    groups = {f"{e['app']}/{e['env']}": e["groups"] for e in health["environments"]}
    warm = {
        f"{e['app']}/{e['env']}": {fleet["group"]: fleet["until"] for fleet in e.get("warm") or []}
        for e in health["environments"]
    }
    return _page.render(
        refresh=REFRESH,
        report=report,
        daemon=health["daemon"],
        groups=groups,
        warm=warm,
        releases=views.releases(deployments, rollbacks),
        events=views.folded(events, EVENT_ROWS),
        bill=bill,
        num=number,
        pct=share,
        money=views.money,
        day=views.day_and_time,
        when=views.when,
        clock=_clock,
        logs_page=LOGS,
        summary=lambda e: fleet_summary(e, utc=True),
        check=describe_check,
    )


def render_log(instance: str, lines: list[dict[str, Any]]) -> str:
    """The read-only log view of one instance: its last lines, app text escaped and made printable."""
    return _log_page.render(instance=instance, lines=lines, page=PAGE, when=views.when, text=printable)


def _clock(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%H:%M:%S UTC")
