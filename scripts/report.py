#!/usr/bin/env python3
"""The main job's lead-quality report: one self-contained HTML file, charts as inline SVG.

    python scripts/report.py                 # writes $FB_LEADS_OUTPUT/report.html (output/)
    python scripts/report.py --out FILE      # elsewhere

It reads the warehouse (``fb_leads.leads``, ``forms``, ``messenger_leads``,
``crm.stage_changes``; ``WAREHOUSE_*`` as for scripts/loop.py), the target's ledger
(``TARGET_FB_CONVERSIONS_LEDGER``, default ``output/ledger.sqlite``: the events Meta accepted,
and in ``fb_messenger_outbox`` the Messenger sends) and its rejects file
(``TARGET_FB_CONVERSIONS_REJECTS_PATH``, as the summary finds it), and shows: leads per form and
per day; the stage funnel per form and per campaign; the time from a lead's creation to each
stage (median and distribution); the events accepted per stage and rejected per reason; the
Messenger Lead Ads leads. Every number is in a table too (each cell carries ``data-key``, for
the tests). The charts are drawn by matplotlib as SVG and put inline: no script, no font, no
URL, so the file opens offline in any browser.

Counts, durations, form, campaign, ad and stage names and reasons only: never an email, a
phone, an answer, a lead id, a PSID or a token.
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import io
import json
import os
import re
import statistics
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt
import sqlalchemy as sa
from matplotlib.ticker import MaxNLocator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loop import OUTPUT, REJECTS, reject_reason

from fb_graph.database import database_url, sqlite_path

LEDGER = os.environ.get("TARGET_FB_CONVERSIONS_LEDGER") or str(OUTPUT / "ledger.sqlite")
# The example CRM's stages in funnel order (crm/sample_crm.py); other stages follow, by their
# median time from the lead's creation.
KNOWN_STAGES = ("raw_lead", "qualified", "opportunity", "won", "lost")
LEADS = "leads"  # the funnel's first column: every lead in the warehouse
ORGANIC = "organic"  # the campaign key of leads without one (organic leads, no ad)
TOP = 12  # forms or campaigns drawn in one chart (the tables list them all)
DAYS_DRAWN = 90  # the per-day chart's last days (Meta keeps leads about 90 days)
PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#b279a2", "#e45756", "#72b7b2", "#9d755d")
STAGE_COLORS = {
    LEADS: "#9e9e9e",
    "raw_lead": "#4c78a8",
    "qualified": "#72b7b2",
    "opportunity": "#f58518",
    "won": "#54a24b",
    "lost": "#e45756",
}


@dataclass
class Form:
    form_id: str
    name: str
    status: str
    leads: int


@dataclass
class Campaign:
    key: str  # campaign id, or ORGANIC
    name: str
    leads: int


@dataclass
class Messenger:
    """Messenger Lead Ads leads (fb_leads.messenger_leads), when the table exists."""

    by_status: dict[str, int]
    by_ad: list[tuple[str, int]]
    by_day: dict[dt.date, int]
    stages: dict[str, int]  # Messenger leads that reached each CRM stage
    events: dict[str, int]  # business-messaging events Meta acknowledged, per event name
    followups: int  # follow-up messages Meta acknowledged


@dataclass
class Facts:
    generated_at: dt.datetime
    forms: list[Form]
    per_day: dict[dt.date, dict[str, int]]  # day (UTC) -> form id -> leads
    stages: list[str]
    funnel_form: dict[str, dict[str, int]]  # form id -> stage -> leads that reached it
    campaigns: list[Campaign]
    funnel_campaign: dict[str, dict[str, int]]
    durations: dict[str, list[float]]  # stage -> seconds from the lead's creation, per lead
    accepted: dict[str, int]  # ledger: events Meta acknowledged, per event name (stage)
    rejected: Counter[tuple[str, str]] = field(default_factory=Counter)  # (reason, stage)
    rejects_rows: int = 0
    stage_changes: bool = False  # crm.stage_changes exists
    messenger: Messenger | None = None
    sources: dict[str, str] = field(default_factory=dict)


# -- reading ------------------------------------------------------------------------------------


def _exists(conn, table: str) -> bool:
    (found,) = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()
    return found is not None


def _order_stages(found: Iterable[str], durations: dict[str, list[float]]) -> list[str]:
    known = [stage for stage in KNOWN_STAGES if stage in found]
    other = sorted(
        (stage for stage in set(found) if stage not in KNOWN_STAGES),
        key=lambda s: (statistics.median(durations[s]) if durations.get(s) else 0.0, s),
    )
    return known + other


# Leads per form (the form's name and status when the forms stream was loaded too).
_FORMS = (
    "SELECT l.form_id, coalesce(max(f.name), '?'), coalesce(max(f.status), '?'), count(*) "
    "FROM fb_leads.leads l LEFT JOIN fb_leads.forms f ON f.id = l.form_id "
    "GROUP BY l.form_id ORDER BY count(*) DESC, l.form_id"
)
_FORMS_UNNAMED = (
    "SELECT form_id, '?', '?', count(*) FROM fb_leads.leads "
    "GROUP BY form_id ORDER BY count(*) DESC, form_id"
)
# A form lead's CRM changes: crm.stage_changes.lead_id holds the Meta lead id ("l:<digits>" as
# Ads Manager exports write it, or the digits), joined as crm/conversion_events.sql does.
_FUNNEL_PER_FORM = (
    "SELECT l.form_id, s.stage, count(DISTINCT l.id) FROM crm.stage_changes AS s "
    "JOIN fb_leads.leads AS l ON l.id = regexp_replace(s.lead_id, '^l:', '') GROUP BY 1, 2"
)
_FUNNEL_PER_CAMPAIGN = (
    "SELECT coalesce(l.campaign_id, %s), s.stage, count(DISTINCT l.id) FROM crm.stage_changes AS s "
    "JOIN fb_leads.leads AS l ON l.id = regexp_replace(s.lead_id, '^l:', '') GROUP BY 1, 2"
)
# The first time each lead reached each stage, from the lead's creation (UTC in the table).
_TIME_TO_STAGE = (
    "SELECT s.stage, extract(epoch FROM min(s.stage_changed_at) "
    "- (l.created_time AT TIME ZONE 'UTC'))::float8 FROM crm.stage_changes AS s "
    "JOIN fb_leads.leads AS l ON l.id = regexp_replace(s.lead_id, '^l:', '') "
    "GROUP BY l.id, s.stage"
)


def read_warehouse(conn) -> dict:
    out: dict = {"forms": [], "per_day": {}, "funnel_form": {}, "campaigns": []}
    out.update(funnel_campaign={}, durations={}, stage_changes=False, messenger=None)
    if not _exists(conn, "fb_leads.leads"):
        return out
    forms = _FORMS if _exists(conn, "fb_leads.forms") else _FORMS_UNNAMED
    out["forms"] = [
        Form(str(form_id), name, status, count)
        for form_id, name, status, count in conn.execute(forms)
    ]
    per_day: dict[dt.date, dict[str, int]] = {}
    for day, form_id, count in conn.execute(
        "SELECT created_time::date, form_id, count(*) FROM fb_leads.leads GROUP BY 1, 2"
    ):
        per_day.setdefault(day, {})[str(form_id)] = count
    out["per_day"] = dict(sorted(per_day.items()))
    out["campaigns"] = [
        Campaign(key, name, count)
        for key, name, count in conn.execute(
            "SELECT coalesce(campaign_id, %s), "
            "coalesce(max(campaign_name), CASE WHEN campaign_id IS NULL "
            "THEN 'organic (no ad)' ELSE '?' END), count(*) "
            "FROM fb_leads.leads GROUP BY campaign_id ORDER BY count(*) DESC, 1",
            (ORGANIC,),
        )
    ]
    if not _exists(conn, "crm.stage_changes"):
        return out
    out["stage_changes"] = True
    for form_id, stage, count in conn.execute(_FUNNEL_PER_FORM):
        out["funnel_form"].setdefault(str(form_id), {})[stage] = count
    for campaign, stage, count in conn.execute(_FUNNEL_PER_CAMPAIGN, (ORGANIC,)):
        out["funnel_campaign"].setdefault(str(campaign), {})[stage] = count
    durations: dict[str, list[float]] = {}
    for stage, seconds in conn.execute(_TIME_TO_STAGE):
        durations.setdefault(stage, []).append(float(seconds))
    out["durations"] = durations
    if _exists(conn, "fb_leads.messenger_leads"):
        out["messenger"] = _read_messenger(conn)
    return out


def _read_messenger(conn) -> dict:
    by_status = dict(
        conn.execute("SELECT status, count(*) FROM fb_leads.messenger_leads GROUP BY status")
    )
    by_ad = [
        (str(title), count)
        for title, count in conn.execute(
            "SELECT coalesce(ad_title, ad_id, 'no ad'), count(*) FROM fb_leads.messenger_leads "
            "GROUP BY 1 ORDER BY 2 DESC, 1"
        )
    ]
    by_day = dict(
        conn.execute(
            "SELECT coalesce(completed_at, _sdc_batched_at)::date, count(*) "
            "FROM fb_leads.messenger_leads GROUP BY 1 ORDER BY 1"
        )
    )
    stages = dict(
        conn.execute(
            "SELECT s.stage, count(DISTINCT s.lead_id) FROM crm.stage_changes s "
            "JOIN fb_leads.messenger_leads m ON s.lead_id = 'm:' || m.id GROUP BY s.stage"
        )
    )
    return {"by_status": by_status, "by_ad": by_ad, "by_day": by_day, "stages": stages}


def read_ledger(location: str) -> tuple[dict[str, int], dict[str, int], int]:
    """Events Meta acknowledged per event name; Messenger business-messaging events per name
    and follow-ups (the outbox): from the target's ledger, if there is one."""
    path = sqlite_path(location)
    if path is not None and not path.exists():
        return {}, {}, 0
    engine = sa.create_engine(database_url(location))
    try:
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            accepted: dict[str, int] = {}
            events: dict[str, int] = {}
            followups = 0
            if "fb_conversions_ledger" in tables:
                accepted = {
                    str(name): int(count)
                    for name, count in conn.execute(
                        sa.text(
                            "SELECT event_name, count(*) FROM fb_conversions_ledger "
                            "GROUP BY event_name"
                        )
                    )
                }
            if "fb_messenger_outbox" in tables:
                for kind, name, count in conn.execute(
                    sa.text(
                        "SELECT kind, name, count(*) FROM fb_messenger_outbox "
                        "WHERE state = 'acknowledged' GROUP BY kind, name"
                    )
                ):
                    if kind == "event":
                        events[str(name)] = int(count)
                    elif kind == "message":
                        followups += int(count)
    finally:
        engine.dispose()
    return accepted, events, followups


def read_rejects(path: Path) -> tuple[Counter[tuple[str, str]], int]:
    """Rejected events per (reason, stage), each event once (its last row), and the rows.
    A row without an event id (a record no event could be built from) counts as one."""
    last: dict[str, tuple[str, str]] = {}
    rows = 0
    if path.exists():
        with path.open(encoding="utf-8") as file:
            for number, line in enumerate(file):
                if not line.strip():
                    continue
                rows += 1
                try:
                    record = json.loads(line)
                except ValueError:
                    record = {}
                key = record.get("event_id") or f"row {number}"
                last[str(key)] = (reject_reason(line), str(record.get("stage") or "-"))
    return Counter(last.values()), rows


def collect(conn, ledger: str, rejects: Path) -> Facts:
    warehouse = read_warehouse(conn)
    accepted, events, followups = read_ledger(ledger)
    rejected, rows = read_rejects(rejects)
    found = set(accepted) | {stage for _, stage in rejected if stage != "-"}
    found |= set(warehouse["durations"])
    messenger = None
    if warehouse["messenger"] is not None:
        messenger = Messenger(**warehouse["messenger"], events=events, followups=followups)
        found |= set(messenger.stages)
    return Facts(
        generated_at=dt.datetime.now(dt.timezone.utc).replace(microsecond=0),
        forms=warehouse["forms"],
        per_day=warehouse["per_day"],
        stages=_order_stages(found, warehouse["durations"]),
        funnel_form=warehouse["funnel_form"],
        campaigns=warehouse["campaigns"],
        funnel_campaign=warehouse["funnel_campaign"],
        durations=warehouse["durations"],
        accepted=accepted,
        rejected=rejected,
        rejects_rows=rows,
        stage_changes=warehouse["stage_changes"],
        messenger=messenger,
        sources={"ledger": _where(ledger), "rejects": str(rejects)},
    )


def _where(location: str) -> str:
    """Where the ledger is, said without a URL (no user, password or host either)."""
    path = sqlite_path(location)
    if path is not None:
        return str(path)
    url = sa.engine.make_url(database_url(location))
    return f"the {url.get_backend_name()} database {url.database or ''}".rstrip()


# -- charts -------------------------------------------------------------------------------------

plt.rcParams.update(
    {
        "svg.fonttype": "none",  # text stays text: searchable, and no glyph outlines
        "text.parse_math": False,  # a "$" in a form or campaign name is a dollar sign
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.titlesize": 10,
        "axes.titleweight": "bold",
    }
)


def svg(fig, name: str) -> str:
    """The figure as an inline <svg> element: no XML prolog, no namespace or DTD URL, and its
    ids prefixed with ``name`` so that several charts can share one page."""
    plt.rcParams["svg.hashsalt"] = name  # the same chart gives the same file
    buffer = io.StringIO()
    fig.savefig(
        buffer,
        format="svg",
        bbox_inches="tight",
        metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
    )
    plt.close(fig)
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r'\s+xmlns(?::\w+)?="[^"]*"', "", text)
    text = text.replace("xlink:href=", "href=")
    text = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{name}-{m[1]}"', text)
    text = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{name}-{m[1]})", text)
    text = re.sub(r'href="#([^"]+)"', lambda m: f'href="#{name}-{m[1]}"', text)
    return text.replace(
        "<svg ", f'<svg class="chart" data-chart="{name}" role="img" aria-label="{name}" ', 1
    )


def _whole(axis) -> None:
    """Counts: ticks on whole numbers only."""
    axis.set_major_locator(MaxNLocator(integer=True))


def _short(text: str, width: int = 34) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def chart_leads_per_form(forms: Sequence[Form]) -> str:
    shown = list(forms[:TOP])[::-1]
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(shown) + 1.0))
    bars = ax.barh([_short(f.name) for f in shown], [f.leads for f in shown], color=PALETTE[0])
    ax.bar_label(bars, padding=3)
    ax.set_xlabel("leads in the warehouse")
    _whole(ax.xaxis)
    ax.set_title("Leads per form")
    return svg(fig, "leads-per-form")


def chart_leads_per_day(per_day: dict[dt.date, dict[str, int]], forms: Sequence[Form]) -> str:
    days = sorted(per_day)[-DAYS_DRAWN:]
    shown = [f.form_id for f in forms[: len(PALETTE) - 1]]
    fig, ax = plt.subplots(figsize=(10, 3.4))
    bottom = [0] * len(days)
    series = [(f, _short(next(x.name for x in forms if x.form_id == f), 28)) for f in shown]
    if len(forms) > len(shown):
        series.append(("", "other forms"))
    for i, (form_id, label) in enumerate(series):
        values = [
            per_day[d].get(form_id, 0)
            if form_id
            else sum(n for f, n in per_day[d].items() if f not in shown)
            for d in days
        ]
        ax.bar(days, values, bottom=bottom, label=label, color=PALETTE[i % len(PALETTE)])
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_ylabel("leads created")
    _whole(ax.yaxis)
    ax.set_title("Leads per day (UTC), per form")
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.autofmt_xdate()
    return svg(fig, "leads-per-day")


def chart_funnel(
    name: str, title: str, groups: Sequence[tuple[str, str, int]], funnel: dict, stages: list[str]
) -> str:
    """Grouped bars: one group per form or campaign (key, label, leads), one bar per funnel
    column (every lead, then each stage)."""
    shown = list(groups[:TOP])
    columns = [LEADS, *stages]
    width = 0.8 / len(columns)
    fig, ax = plt.subplots(figsize=(10, 3.8))
    for i, column in enumerate(columns):
        values = [
            leads if column == LEADS else funnel.get(key, {}).get(column, 0)
            for key, _, leads in shown
        ]
        xs = [g + (i - (len(columns) - 1) / 2) * width for g in range(len(shown))]
        bars = ax.bar(
            xs,
            values,
            width,
            label=column,
            color=STAGE_COLORS.get(column, PALETTE[i % len(PALETTE)]),
        )
        if len(shown) * len(columns) <= 40:
            ax.bar_label(bars, fontsize=7, padding=1)
    ax.set_xticks(range(len(shown)), [_short(label, 30) for _, label, _ in shown])
    ax.set_ylabel("leads that reached the stage")
    _whole(ax.yaxis)
    ax.set_title(title)
    ax.legend(fontsize=8, frameon=False, ncols=len(columns), loc="upper right")
    ax.margins(y=0.15)
    if len(shown) > 4:
        plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    return svg(fig, name)


def chart_time_to_stage(durations: dict[str, list[float]], stages: list[str]) -> str:
    shown = [stage for stage in stages if durations.get(stage)]
    longest = max(max(durations[s]) for s in shown)
    unit, scale = ("days", 86400.0) if longest > 3 * 86400 else ("hours", 3600.0)
    fig, axes = plt.subplots(
        len(shown), 1, figsize=(9, 1.35 * len(shown) + 0.8), sharex=True, squeeze=False
    )
    for ax, stage in zip(axes[:, 0], shown, strict=True):
        values = [v / scale for v in durations[stage]]
        ax.hist(values, bins=40, color=STAGE_COLORS.get(stage, PALETTE[0]))
        median = statistics.median(values)
        ax.axvline(median, color="#333333", linestyle="--", linewidth=1)
        ax.text(
            0.99,
            0.9,
            f"{stage}: {len(values)} leads, median {median:.1f} {unit}",
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize=8,
        )
        ax.set_ylabel("leads", fontsize=8)
        _whole(ax.yaxis)
    axes[-1, 0].set_xlabel(f"{unit} from the lead's creation to the stage (first change to it)")
    axes[0, 0].set_title("Time from lead creation to each stage (dashed line: median)")
    return svg(fig, "time-to-stage")


def chart_events(
    accepted: dict[str, int], rejected: Counter[tuple[str, str]], stages: list[str]
) -> str:
    per_stage: Counter[str] = Counter()
    per_reason: Counter[str] = Counter()
    for (reason, stage), count in rejected.items():
        per_stage[stage] += count
        per_reason[reason] += count
    names = [s for s in stages if s in accepted or s in per_stage]
    names += sorted((set(accepted) | set(per_stage)) - set(names))
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(10, 0.4 * max(len(names), len(per_reason), 3) + 1.2), width_ratios=(3, 2)
    )
    ys = list(range(len(names)))[::-1]
    good = left.barh(ys, [accepted.get(n, 0) for n in names], color="#54a24b", label="accepted")
    bad = left.barh(
        ys,
        [per_stage.get(n, 0) for n in names],
        left=[accepted.get(n, 0) for n in names],
        color="#e45756",
        label="rejected",
    )
    left.bar_label(good, label_type="center", fontsize=7, color="white")
    left.bar_label(bad, labels=[str(per_stage.get(n, "")) for n in names], padding=2, fontsize=7)
    left.set_yticks(ys, names)
    left.set_xlabel("Conversions API events")
    _whole(left.xaxis)
    left.set_title("Events per stage: accepted (ledger), rejected")
    left.legend(fontsize=8, frameon=False, loc="lower right")
    reasons = per_reason.most_common()[::-1]
    if reasons:
        bars = right.barh(
            [_short(r, 26) for r, _ in reasons], [n for _, n in reasons], color="#e45756"
        )
        right.bar_label(bars, padding=2, fontsize=8)
    else:
        right.text(0.5, 0.5, "no rejected record", ha="center", va="center")
        right.set_yticks([])
    right.set_xlabel("rejected events")
    _whole(right.xaxis)
    right.set_title("Rejected, by reason")
    return svg(fig, "events")


def chart_messenger(m: Messenger, stages: list[str]) -> str:
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 2.8))
    statuses = sorted(m.by_status.items())
    bars = left.bar(
        [s for s, _ in statuses], [n for _, n in statuses], color=PALETTE[: len(statuses)]
    )
    left.bar_label(bars, padding=2)
    left.set_ylabel("Messenger leads")
    _whole(left.yaxis)
    left.set_title("Messenger leads by status")
    left.margins(y=0.2)
    reached = [s for s in stages if s in m.stages]
    bars = right.bar(
        reached,
        [m.stages[s] for s in reached],
        color=[STAGE_COLORS.get(s, PALETTE[0]) for s in reached],
    )
    right.bar_label(bars, padding=2)
    right.set_ylabel("leads that reached the stage")
    _whole(right.yaxis)
    right.set_title("Messenger leads' CRM stages")
    right.margins(y=0.2)
    return svg(fig, "messenger")


# -- the page -----------------------------------------------------------------------------------

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
       margin: 0 auto; max-width: 1100px; padding: 1.5em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
.meta { color: #666; font-size: 0.9em; }
.figures { display: flex; flex-wrap: wrap; gap: 1em; margin: 1em 0; }
.figure { border: 1px solid #ddd; border-radius: 6px; padding: 0.6em 1em; min-width: 9em; }
.figure .n { font-size: 1.6em; font-weight: 600; display: block; }
svg.chart { max-width: 100%; height: auto; display: block; margin: 0.8em 0; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.92em; }
th, td { border-bottom: 1px solid #e5e5e5; padding: 0.25em 0.7em; text-align: left; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
details summary { cursor: pointer; color: #444; }
.note { color: #555; font-size: 0.9em; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _cell(key: str, value: float, text: str | None = None) -> str:
    return (
        f'<td class="n" data-key="{_e(key)}" data-value="{value}">'
        f"{_e(text if text is not None else value)}</td>"
    )


def _duration(seconds: float) -> str:
    if abs(seconds) < 3600:
        return f"{seconds / 60:.0f} min"
    if abs(seconds) < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=4, method="inclusive")[int(q * 4) - 1]


def _table(head: Sequence[str], rows: Iterable[str], numeric_from: int = 1) -> str:
    cells = "".join(
        f'<th class="n">{_e(h)}</th>' if i >= numeric_from else f"<th>{_e(h)}</th>"
        for i, h in enumerate(head)
    )
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _figure(key: str, value: int, label: str) -> str:
    return (
        f'<div class="figure"><span class="n" data-key="{_e(key)}" data-value="{value}">'
        f"{value}</span>{_e(label)}</div>"
    )


def section_leads(f: Facts) -> str:
    rows = [
        f"<tr><td>{_e(form.name)}</td><td>{_e(form.form_id)}</td><td>{_e(form.status)}</td>"
        + _cell(f"leads:form:{form.form_id}", form.leads)
        + "</tr>"
        for form in f.forms
    ]
    out = ["<h2 id='leads'>Leads per form and per day</h2>"]
    if not f.forms:
        return out[0] + "<p>No lead in the warehouse yet (fb_leads.leads).</p>"
    out.append(chart_leads_per_form(f.forms))
    out.append(_table(("form", "form id", "status", "leads"), rows, numeric_from=3))
    out.append(chart_leads_per_day(f.per_day, f.forms))
    day_rows = [
        f"<tr><td>{day.isoformat()}</td>"
        + _cell(f"leads:day:{day.isoformat()}", sum(counts.values()))
        + "".join(
            _cell(f"leads:day:{day.isoformat()}:{form.form_id}", counts.get(form.form_id, 0))
            for form in f.forms
        )
        + "</tr>"
        for day, counts in sorted(f.per_day.items(), reverse=True)
    ]
    head = ("day (UTC)", "all forms", *(_short(form.name, 24) for form in f.forms))
    out.append(
        f"<details><summary>Leads per day, as a table ({len(f.per_day)} days)</summary>"
        + _table(head, day_rows)
        + "</details>"
    )
    return "".join(out)


def _funnel_rows(kind: str, groups: Sequence[tuple[str, str, int]], f: Facts, funnel: dict) -> str:
    rows = []
    for key, label, leads in groups:
        cells = _cell(f"funnel:{kind}:{key}:{LEADS}", leads)
        for stage in f.stages:
            count = funnel.get(key, {}).get(stage, 0)
            share = f" ({100 * count / leads:.0f} %)" if leads else ""
            cells += _cell(f"funnel:{kind}:{key}:{stage}", count, f"{count}{share}")
        rows.append(f"<tr><td>{_e(label)}</td><td>{_e(key)}</td>{cells}</tr>")
    return _table((kind, "id", LEADS, *f.stages), rows, numeric_from=2)


def section_funnel(f: Facts) -> str:
    out = ["<h2 id='funnel'>Stage funnel</h2>"]
    if not f.stage_changes:
        return out[0] + "<p>No CRM stage change yet (crm.stage_changes).</p>"
    out.append(
        "<p class='note'>Leads that reached each CRM stage (crm.stage_changes joined to "
        "fb_leads.leads on the lead id; percentages of the leads of the form or campaign). "
        "A lead counts once per stage.</p>"
    )
    forms = [(form.form_id, form.name, form.leads) for form in f.forms]
    out.append(chart_funnel("funnel-form", "Funnel per form", forms, f.funnel_form, f.stages))
    out.append(_funnel_rows("form", forms, f, f.funnel_form))
    campaigns = [(c.key, c.name, c.leads) for c in f.campaigns]
    out.append(
        chart_funnel(
            "funnel-campaign", "Funnel per campaign", campaigns, f.funnel_campaign, f.stages
        )
    )
    out.append(_funnel_rows("campaign", campaigns, f, f.funnel_campaign))
    return "".join(out)


def section_time(f: Facts) -> str:
    out = ["<h2 id='time'>Time from lead creation to each stage</h2>"]
    if not any(f.durations.values()):
        return out[0] + "<p>No CRM stage change of a form lead yet.</p>"
    out.append(chart_time_to_stage(f.durations, f.stages))
    rows = []
    for stage in f.stages:
        values = f.durations.get(stage)
        if not values:
            continue
        median = statistics.median(values)
        q1, q3 = _quantile(values, 0.25), _quantile(values, 0.75)
        rows.append(
            f"<tr><td>{_e(stage)}</td>"
            + _cell(f"time:{stage}:leads", len(values))
            + _cell(f"time:{stage}:median_seconds", round(median, 1), _duration(median))
            + _cell(f"time:{stage}:q1_seconds", round(q1, 1), _duration(q1))
            + _cell(f"time:{stage}:q3_seconds", round(q3, 1), _duration(q3))
            + _cell(f"time:{stage}:max_seconds", round(max(values), 1), _duration(max(values)))
            + "</tr>"
        )
    out.append(_table(("stage", "leads", "median", "25 %", "75 %", "longest"), rows))
    return "".join(out)


def section_events(f: Facts) -> str:
    out = ["<h2 id='events'>Conversions API events</h2>"]
    out.append(
        "<p class='note'>Accepted: the events Meta acknowledged, from the target's ledger "
        f"({_e(f.sources.get('ledger', ''))}); rejected: the records the target refused or "
        f"Meta rejected, from its rejects file ({_e(f.sources.get('rejects', ''))}), each event "
        "once with its last reason. All runs so far. An event sent again with "
        "<code>--replay-rejects</code> and accepted counts in both.</p>"
    )
    if not f.accepted and not f.rejected:
        return "".join(out) + "<p>No event sent yet.</p>"
    out.append(chart_events(f.accepted, f.rejected, f.stages))
    per_stage: Counter[str] = Counter()
    per_reason: Counter[str] = Counter()
    for (reason, stage), count in f.rejected.items():
        per_stage[stage] += count
        per_reason[reason] += count
    names = [s for s in f.stages if s in f.accepted or s in per_stage]
    names += sorted((set(f.accepted) | set(per_stage)) - set(names))
    rows = [
        f"<tr><td>{_e(n)}</td>"
        + _cell(f"events:accepted:{n}", f.accepted.get(n, 0))
        + _cell(f"events:rejected_stage:{n}", per_stage.get(n, 0))
        + "</tr>"
        for n in names
    ]
    rows.append(
        "<tr><th>total</th>"
        + _cell("events:accepted:total", sum(f.accepted.values()))
        + _cell("events:rejected:total", sum(per_reason.values()))
        + "</tr>"
    )
    out.append(_table(("stage (event name)", "accepted", "rejected"), rows))
    if per_reason:
        reason_rows = [
            f"<tr><td>{_e(reason)}</td>" + _cell(f"events:rejected:{reason}", count) + "</tr>"
            for reason, count in per_reason.most_common()
        ]
        out.append(_table(("rejected, by reason", "events"), reason_rows))
        out.append(
            f"<p class='note'>{f.rejects_rows} rows in the rejects file (hashes, lead ids and "
            "reasons only; none of them is shown here).</p>"
        )
    return "".join(out)


def section_messenger(f: Facts) -> str:
    out = ["<h2 id='messenger'>Messenger Lead Ads leads</h2>"]
    m = f.messenger
    if m is None or not sum(m.by_status.values()):
        return out[0] + "<p>No Messenger lead yet (fb_leads.messenger_leads).</p>"
    out.append(
        '<div class="figures">'
        + _figure("messenger:leads:total", sum(m.by_status.values()), "Messenger leads")
        + "".join(
            _figure(f"messenger:leads:{status}", n, status)
            for status, n in sorted(m.by_status.items())
        )
        + _figure("messenger:followups", m.followups, "follow-ups Meta accepted")
        + _figure("messenger:events:total", sum(m.events.values()), "business-messaging events")
        + "</div>"
    )
    out.append(chart_messenger(m, f.stages))
    stage_rows = [
        f"<tr><td>{_e(s)}</td>" + _cell(f"messenger:stage:{s}", m.stages[s]) + "</tr>"
        for s in f.stages
        if s in m.stages
    ]
    out.append(_table(("CRM stage", "Messenger leads that reached it"), stage_rows))
    event_rows = [
        f"<tr><td>{_e(name)}</td>" + _cell(f"messenger:events:{name}", n) + "</tr>"
        for name, n in sorted(m.events.items())
    ]
    if event_rows:
        out.append(_table(("business-messaging event (accepted)", "events"), event_rows))
    ad_rows = [
        f"<tr><td>{_e(ad)}</td>" + _cell(f"messenger:ad:{ad}", n) + "</tr>" for ad, n in m.by_ad
    ]
    out.append(_table(("ad", "Messenger leads"), ad_rows))
    day_rows = [
        f"<tr><td>{day.isoformat()}</td>" + _cell(f"messenger:day:{day.isoformat()}", n) + "</tr>"
        for day, n in sorted(m.by_day.items(), reverse=True)
    ]
    out.append(_table(("day completed (UTC)", "Messenger leads"), day_rows))
    return "".join(out)


def render(f: Facts) -> str:
    total = sum(form.leads for form in f.forms)
    messenger = sum(f.messenger.by_status.values()) if f.messenger else 0
    rejected = sum(f.rejected.values())
    figures = (
        _figure("leads:total", total, "leads in the warehouse")
        + _figure("forms:total", len(f.forms), "forms")
        + _figure("events:accepted:all", sum(f.accepted.values()), "events accepted")
        + _figure("events:rejected:all", rejected, "events rejected")
        + _figure("messenger:leads:all", messenger, "Messenger leads")
    )
    body = "".join(
        (
            section_leads(f),
            section_funnel(f),
            section_time(f),
            section_events(f),
            section_messenger(f),
        )
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>fb-leads: lead-quality report</title><style>{CSS}</style></head><body>"
        "<h1>fb-leads: lead-quality report</h1>"
        f'<p class="meta">Generated {f.generated_at.isoformat()} from the warehouse '
        "(fb_leads, crm), the target's ledger and rejects file. Counts and durations only: no "
        "email, phone, answer, lead id or PSID.</p>"
        f'<div class="figures">{figures}</div>{body}</body></html>\n'
    )


def write_report(out: Path, ledger: str = LEDGER, rejects: Path = REJECTS) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "crm"))
    from sample_crm import connect

    with connect() as conn:
        facts = collect(conn, ledger, rejects)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.write_text(render(facts), encoding="utf-8")
    partial.replace(out)  # a reader never sees half a report
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=OUTPUT / "report.html")
    args = parser.parse_args(argv)
    try:
        path = write_report(args.out.resolve())
    except Exception as exc:  # psycopg or SQLAlchemy: one sentence, no traceback
        if not type(exc).__module__.startswith(("psycopg", "sqlalchemy")):
            raise
        print(
            f"error: the report could not read the warehouse or the ledger "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}).",
            file=sys.stderr,
        )
        return 1
    print(f"Lead-quality report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
