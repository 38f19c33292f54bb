"""The status page: counters, unread leads and the last delivery per Page, as JSON and as
HTML for a person. Counts, ids and times only: nothing from a lead, no setting's value."""

from __future__ import annotations

import datetime as dt
import html
import time
from typing import Any

COUNTERS = (
    ("deliveries", "Deliveries", "Signed deliveries accepted"),
    ("changes", "Changes", "Changes in those deliveries"),
    ("stored", "Stored", "Changes stored in the spool (once each)"),
    ("duplicates", "Duplicates", "Changes already in the spool: not stored again"),
    ("ignored_pages", "Ignored Pages", "Changes of Pages outside page_ids: acknowledged only"),
    (
        "changed_fields_only",
        "changed_fields only",
        "Entries without values: subscribe with include_values=true",
    ),
    ("bad_signatures", "Bad signatures", "Refused: X-Hub-Signature-256 missing or wrong"),
    ("bad_requests", "Malformed", "Refused: not a webhook delivery"),
    ("too_large", "Too large", "Refused: over max_body_bytes"),
    (
        "messenger_referrals",
        "Messenger referrals",
        "Messenger Lead Ads referrals (LEAD_COMPLETE or LEAD_INCOMPLETE)",
    ),
    (
        "messenger_handovers",
        "Messenger handovers",
        "Threads passed on by Meta's Leadgen app at the end of a lead flow",
    ),
    ("messenger_summaries", "Lead summaries", "Lead summary messages of complete flows"),
    (
        "messenger_messages",
        "Messages",
        "People's own messages (their time is kept, not their text)",
    ),
    ("messaging_echoes", "Echoes", "The Page's own messages: counted, not stored"),
    (
        "messaging_other",
        "Other messaging",
        "Other messaging events (reads, postbacks...): kept raw",
    ),
    (
        "messaging_malformed",
        "Malformed messaging",
        "Messaging events that could not be read: kept raw, the delivery still stored",
    ),
)
_ALERTS = {
    "bad_signatures",
    "bad_requests",
    "too_large",
    "changed_fields_only",
    "messaging_malformed",
}
REFRESH_SECONDS = 10


def status_document(spool_status: dict[str, Any], receiver: dict[str, Any]) -> dict[str, Any]:
    """What ``/status.json`` answers."""
    now = time.time()
    counters = spool_status["counters"]
    oldest = spool_status["oldest_unread_age_seconds"]
    return {
        "ok": True,
        "receiver": receiver,
        "counters": {name: int(counters.get(name, 0)) for name, _, _ in COUNTERS},
        "unread_leads": int(spool_status["unread_leads"]),
        "oldest_unread_age_seconds": round(oldest, 1) if oldest is not None else None,
        "tap_position": int(spool_status["reader_position"]),
        "unread_messenger_events": int(spool_status.get("unread_messenger_events", 0)),
        "messenger_position": int(spool_status.get("messenger_position", 0)),
        "pages": [
            {
                "page_id": page["page_id"],
                "last_delivery_at": _rfc3339(page["last_delivery_at"]),
                "last_delivery_age_seconds": round(max(0.0, now - page["last_delivery_at"]), 1),
                "changes": int(page["changes"]),
            }
            for page in spool_status["pages"]
        ],
    }


def status_html(doc: dict[str, Any]) -> str:
    """The page a person reads: the same document, laid out."""
    counters = doc["counters"]
    tiles = "".join(
        f'<div class="tile{" alert" if name in _ALERTS and counters[name] else ""}" '
        f'title="{_e(hint)}"><div class="n">{counters[name]:,}</div>'
        f'<div class="l">{_e(label)}</div></div>'
        for name, label, hint in COUNTERS
    )
    unread = doc["unread_leads"]
    oldest = doc["oldest_unread_age_seconds"]
    backlog = (
        f"<b>{unread:,}</b> lead{'s' if unread != 1 else ''} spooled, not yet read by the tap"
        + (f"; the oldest has waited <b>{_age(oldest)}</b>" if oldest is not None else "")
    )
    rows = (
        "".join(
            f"<tr><td>{_e(p['page_id'])}</td><td>{_e(p['last_delivery_at'])}</td>"
            f"<td>{_age(p['last_delivery_age_seconds'])} ago</td><td>{p['changes']:,}</td></tr>"
            for p in doc["pages"]
        )
        or '<tr><td colspan="4" class="muted">No delivery yet.</td></tr>'
    )
    receiver = doc["receiver"]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<title>fb-leads-receiver status</title>
<style>
body {{ font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0;
  background: #f5f6f8; color: #1c1e21; }}
main {{ max-width: 1040px; margin: 0 auto; padding: 28px 24px; }}
h1 {{ font-size: 22px; margin: 0 0 4px; }}
h2 {{ font-size: 16px; margin: 28px 0 10px; }}
.muted {{ color: #65676b; }}
.grid {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr));
  gap: 12px; }}
.tile {{ background: #fff; border: 1px solid #dddfe2; border-radius: 8px; padding: 12px 14px; }}
.tile .n {{ font-size: 24px; font-weight: 600; font-variant-numeric: tabular-nums; }}
.tile .l {{ color: #65676b; font-size: 13px; }}
.tile.alert {{ border-color: #f0b429; background: #fffbea; }}
.backlog {{ background: #fff; border: 1px solid #dddfe2; border-left: 4px solid #1877f2;
  border-radius: 8px; padding: 12px 16px; }}
table {{ width: 100%; border-collapse: collapse; background: #fff; border: 1px solid #dddfe2;
  border-radius: 8px; overflow: hidden; }}
th, td {{ text-align: left; padding: 8px 12px; border-bottom: 1px solid #ebedf0;
  font-variant-numeric: tabular-nums; }}
th {{ background: #f0f2f5; font-size: 13px; color: #4b4f56; }}
</style></head>
<body><main>
<h1>fb-leads-receiver</h1>
<div class="muted">Spool: {_e(receiver["spool"])} · up {_age(receiver["uptime_seconds"])} ·
webhook path {_e(receiver["path"])} · refreshes every {REFRESH_SECONDS} s ·
<a href="/status.json">JSON</a></div>
<h2>Leads waiting for the tap</h2>
<div class="backlog">{backlog}</div>
<div class="muted">Messenger Lead Ads events not yet read by the tap's messenger_leads stream:
<b>{doc["unread_messenger_events"]:,}</b></div>
<h2>Counters (all receivers on this spool)</h2>
<div class="grid">{tiles}</div>
<h2>Last delivery per Page</h2>
<table><thead><tr><th>Page</th><th>Last delivery (UTC)</th><th>Age</th><th>Changes</th></tr>
</thead><tbody>{rows}</tbody></table>
</main></body></html>
"""


def unavailable_html(reason: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
        "<title>fb-leads-receiver: spool unavailable</title></head>"
        '<body style="font: 15px system-ui, sans-serif; margin: 28px">'
        f"<h1>Spool unavailable</h1><p>{_e(reason)}</p>"
        "<p>Deliveries are answered 503 until it is back, so Meta sends them again.</p>"
        "</body></html>"
    )


def _rfc3339(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).isoformat(timespec="seconds")


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min"
    if s < 172800:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} days"


def _e(text: object) -> str:
    return html.escape(str(text))
