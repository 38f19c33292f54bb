"""``target-fb-conversions --read-back``: what Meta made of what the target sent.

After sending, it asks Meta two things about the CRM dataset (``dataset_id``), through the one
Graph client (token in the header only):

* ``GET /{dataset_id}/stats?aggregation=event&start_time=&end_time=``: the events Meta
  received per hour and event name (Ads Pixel Stats), summed over the window;
* ``GET /dataset_quality?dataset_id=&fields=offline``: Meta's data quality of the offline
  (CRM) events per event name: the composite score, the match key score and coverage, and
  Meta's advice (the Dataset Quality API for offline events, in beta at Meta: an app without
  access gets code 10, and the table then says so instead of failing).

Next to them it puts what the target sent: the events the ledger holds as acknowledged by Meta
in the same window (``fb_conversions_ledger``, and business-messaging events of the outbox
sent to the same dataset). The window is the last 7 days (Meta serves no older stats), from
the first whole hour, so Meta's hourly buckets and the ledger cover the same time.

It prints a table on stdout and reads no Singer input. Problems are one sentence (the
target's usual fatal errors: Meta's errors through :mod:`fb_graph.errors`, the ledger's).
Event names are shown as :func:`~.privacy.safe_text` gives them, as the ledger stores them.
"""

from __future__ import annotations

import datetime as dt
import sys
import typing as t
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from fb_graph.client import GraphClient, page_shape
from fb_graph.database import open_engine
from fb_graph.errors import GraphError
from target_fb_conversions.events import OFFLINE_CONVERSIONS
from target_fb_conversions.ledger import TABLE_NAME, LedgerError
from target_fb_conversions.outbox import ACKNOWLEDGED, EVENT
from target_fb_conversions.outbox import TABLE_NAME as OUTBOX_TABLE
from target_fb_conversions.privacy import safe_text
from target_fb_conversions.run import SettingProblem
from target_fb_conversions.settings import NAME, Settings, version

if t.TYPE_CHECKING:
    from target_fb_conversions.target import TargetFbConversions

WINDOW_DAYS = 7
"""Meta serves stats up to seven days before the request."""
MAX_PAGES = 50
QUALITY_FIELDS = "offline{event_name,composite,match_key,frequency,freshness}"
QUALITY_PARTS = ("composite", "match_key", "frequency", "freshness")
NO_ACCESS_CODE = 10
"""Meta's code when the app may not use the Dataset Quality API for offline events (beta)."""


class ReadBackError(SettingProblem):
    """A setting keeps the read-back from running (one sentence, exit 1)."""


@dataclass(frozen=True)
class Window:
    since: dt.datetime
    until: dt.datetime

    @classmethod
    def last_days(cls, now: dt.datetime, days: int = WINDOW_DAYS) -> Window:
        """The last ``days`` days up to ``now``, from the first whole hour in them, to the end
        of ``now``'s second (Meta's times are whole seconds: an event acknowledged in this
        very second counts on both sides)."""
        start = now - dt.timedelta(days=days)
        hour = start.replace(minute=0, second=0, microsecond=0)
        if hour < start:
            hour += dt.timedelta(hours=1)
        until = now.replace(microsecond=0)
        if until < now:
            until += dt.timedelta(seconds=1)
        return cls(hour, until)

    def describe(self) -> str:
        return f"{self.since:%Y-%m-%d %H:%M} to {self.until:%Y-%m-%d %H:%M} UTC"


@dataclass
class MetaSide:
    """What Meta says: events received per name, and its quality rows per name."""

    received: Counter[str] = field(default_factory=Counter)
    quality: dict[str, Mapping[str, t.Any]] = field(default_factory=dict)
    quality_note: str | None = None


# -- Meta's side ---------------------------------------------------------------------------


def stats_shape(body: t.Any) -> str | None:
    """A stats page: ``data`` a list of entries, each with a ``data`` list of value/count."""
    problem = page_shape(body)
    if problem:
        return problem
    for entry in body["data"]:
        items = entry.get("data") if isinstance(entry, dict) else None
        if not isinstance(items, list):
            return "a stats entry without a data list"
        for item in items:
            if not isinstance(item, dict) or "value" not in item:
                return "a stats item without value"
            if not isinstance(item.get("count"), int) or isinstance(item.get("count"), bool):
                return "a stats item without a whole count"
    return None


def quality_shape(body: t.Any) -> str | None:
    """A quality answer: ``offline``, when present, a list of rows with ``event_name``."""
    if not isinstance(body, dict):
        return "not a JSON object"
    rows = body.get("offline", [])
    if not isinstance(rows, list) or not all(
        isinstance(row, dict) and "event_name" in row for row in rows
    ):
        return "a quality answer whose offline is not a list of event rows"
    return None


def read_received(client: GraphClient, dataset_id: str, window: Window) -> Counter[str]:
    """Meta's stats (aggregation ``event``) summed per event name over the window."""
    params: dict[str, t.Any] = {
        "aggregation": "event",
        "start_time": int(window.since.timestamp()),
        "end_time": int(window.until.timestamp()),
    }
    counts: Counter[str] = Counter()
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        answer = client.get(f"{dataset_id}/stats", params, shape=stats_shape)
        for entry in answer["data"]:
            for item in entry["data"]:
                counts[safe_text(str(item["value"]))] += item["count"]
        paging = answer.get("paging") or {}
        after = (paging.get("cursors") or {}).get("after") if isinstance(paging, dict) else None
        if not paging.get("next") or not isinstance(after, str) or after in seen:
            break
        seen.add(after)  # a cursor seen before would page in a loop
        params = {**params, "after": after}
    return counts


def read_quality(
    client: GraphClient, dataset_id: str
) -> tuple[dict[str, Mapping[str, t.Any]], str | None]:
    """Meta's offline quality rows by event name, or a note when the app may not ask."""
    try:
        answer = client.get(
            "dataset_quality",
            {"dataset_id": dataset_id, "fields": QUALITY_FIELDS},
            shape=quality_shape,
        )
    except GraphError as error:
        if error.code != NO_ACCESS_CODE:
            raise
        return {}, (
            "Meta's Dataset Quality API for offline events (in beta) refused this app, so the "
            "quality columns are empty: ask your Meta representative for access "
            f"(Meta said: {error.message})."
        )
    rows = {safe_text(str(row["event_name"])): row for row in answer.get("offline", [])}
    return rows, None


def read_meta(client: GraphClient, dataset_id: str, window: Window) -> MetaSide:
    side = MetaSide(received=read_received(client, dataset_id, window))
    side.quality, side.quality_note = read_quality(client, dataset_id)
    return side


# -- our side ------------------------------------------------------------------------------


def read_sent(location: str, dataset_id: str, window: Window) -> Counter[str]:
    """Events acknowledged per name in the window: the ledger, and the outbox's events."""
    import sqlalchemy as sa  # only when a ledger is read (the target imports this module)

    sent: Counter[str] = Counter()
    try:
        engine = open_engine(location)
    except (sa.exc.SQLAlchemyError, OSError, ValueError) as exc:
        raise LedgerError(
            "The ledger setting does not point to a usable database: give the SQLite file path "
            f"or SQLAlchemy URL the target writes to ({type(exc).__name__})."
        ) from exc
    try:
        tables = set(sa.inspect(engine).get_table_names())
        metadata = sa.MetaData()
        with engine.connect() as conn:
            if TABLE_NAME in tables:
                ledger = sa.Table(TABLE_NAME, metadata, autoload_with=conn)
                query = (
                    sa.select(ledger.c.event_name, sa.func.count())
                    .where(
                        ledger.c.destination == dataset_id,
                        ledger.c.acknowledged_at >= window.since,
                        ledger.c.acknowledged_at < window.until,
                    )
                    .group_by(ledger.c.event_name)
                )
                sent.update({str(name): int(n) for name, n in conn.execute(query)})
            if OUTBOX_TABLE in tables:
                outbox = sa.Table(OUTBOX_TABLE, metadata, autoload_with=conn)
                query = (
                    sa.select(outbox.c.name, sa.func.count())
                    .where(
                        outbox.c.kind == EVENT,
                        outbox.c.destination == dataset_id,
                        outbox.c.state == ACKNOWLEDGED,
                        outbox.c.acknowledged_at >= window.since,
                        outbox.c.acknowledged_at < window.until,
                    )
                    .group_by(outbox.c.name)
                )
                sent.update({str(name): int(n) for name, n in conn.execute(query)})
    except sa.exc.SQLAlchemyError as exc:
        raise LedgerError(
            f"The ledger could not be read: check the ledger setting ({type(exc).__name__})."
        ) from exc
    finally:
        engine.dispose()
    return sent


# -- the table -----------------------------------------------------------------------------


def _score(row: Mapping[str, t.Any] | None, part: str) -> str:
    value = row.get(part) if row else None
    score = value.get("score") if isinstance(value, Mapping) else None
    if isinstance(score, (int, float)) and not isinstance(score, bool):
        return f"{score:.1f}/10"
    return "-"


def _coverage(row: Mapping[str, t.Any] | None) -> dict[str, str]:
    match_key = row.get("match_key") if row else None
    coverage = match_key.get("coverage") if isinstance(match_key, Mapping) else None
    if not isinstance(coverage, Mapping):
        return {}
    return {
        str(key): f"{value:g}%"
        for key, value in coverage.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }


def render(dataset_id: str, window: Window, meta: MetaSide, sent: Counter[str] | None) -> list[str]:
    """The table and the sentences under it."""
    names = sorted(set(meta.received) | set(sent or ()) | set(meta.quality))
    coverages = {name: _coverage(meta.quality.get(name)) for name in names}
    keys = list(dict.fromkeys(key for cov in coverages.values() for key in cov))
    header = ["event name", "sent by us (ledger)", "received by Meta", "data quality",
              "match keys", *(f"{key} coverage" for key in keys)]  # fmt: skip
    rows = [
        [
            name,
            str(sent[name]) if sent is not None else "-",
            str(meta.received[name]),
            _score(meta.quality.get(name), "composite"),
            _score(meta.quality.get(name), "match_key"),
            *(coverages[name].get(key, "-") for key in keys),
        ]
        for name in names
    ]
    total_sent = str(sum(sent.values())) if sent is not None else "-"
    total_received = str(sum(meta.received.values()))
    rows.append(["total", total_sent, total_received, "", "", *("" for _ in keys)])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    out = [
        f"Meta's read-back of dataset {dataset_id}, {window.describe()} (the last "
        f"{WINDOW_DAYS} days):",
        line(header),
        line(["-" * w for w in widths]),
    ]
    out += [line(row) for row in rows]
    if not names:
        out.append("No events in this window, on either side.")
    out += _notes(names, meta, sent)
    return out


def _notes(names: list[str], meta: MetaSide, sent: Counter[str] | None) -> list[str]:
    notes = []
    if sent is None:
        notes.append(
            "The 'sent by us' column needs the ledger setting (a SQLite path or SQLAlchemy URL "
            "the target records acknowledged events in): without it the target keeps no record "
            "of what it sent."
        )
    else:
        differ = [f"{n} (sent {sent[n]}, received {meta.received[n]})"
                  for n in names if sent[n] != meta.received[n]]  # fmt: skip
        if differ:
            notes.append(
                "Counts differ for " + ", ".join(differ) + ": Meta counts every event it "
                "received on the dataset in the window (also from other senders, and a resend "
                "twice), and its stats may come later than its acknowledgement."
            )
        elif names:
            notes.append("Meta received as many events of each name as the ledger holds as sent.")
    if meta.quality_note:
        notes.append(meta.quality_note)
    elif meta.quality:
        notes.append(
            "Data quality and match keys: Meta's scores of the offline (CRM) events over the "
            "last 28 days (Dataset Quality API); coverage: the share of events with that key."
        )
        advice: dict[str, list[str]] = {}
        for name, row in sorted(meta.quality.items()):
            for part in QUALITY_PARTS:
                value = row.get(part)
                text = value.get("recommendation") if isinstance(value, Mapping) else None
                if isinstance(text, str) and text.strip():
                    advice.setdefault(" ".join(text.split()), []).append(name)
        for text, which in advice.items():
            about = "every event" if len(which) == len(meta.quality) > 1 else ", ".join(which)
            notes.append(f"Meta's advice ({about}): {text}")
    elif names:
        notes.append("Meta reported no data quality for these events.")
    return notes


# -- the command ---------------------------------------------------------------------------


def graph_client(settings: Settings, user_agent: str, logger: t.Any) -> GraphClient:
    """The one Graph client, set up from the target's settings."""
    return GraphClient(
        access_token=settings.access_token,
        api_url=settings.api_url,
        api_version=settings.api_version,
        app_secret=settings.app_secret,
        transport=settings.transport,
        logger=logger,
        user_agent=user_agent,
    )


def read_back(
    settings: Settings,
    *,
    user_agent: str,
    logger: t.Any,
    now: dt.datetime | None = None,
) -> list[str]:
    """Ask Meta, read the ledger, and return the lines to print."""
    if settings.api == OFFLINE_CONVERSIONS or not settings.dataset_id:
        raise ReadBackError(
            "--read-back reads a Conversions API dataset: set dataset_id (the legacy Offline "
            "Conversions API, api offline_conversions, was shut down by Meta and reports nothing)."
        )
    dataset_id = str(settings.dataset_id)
    window = Window.last_days(now or dt.datetime.now(dt.timezone.utc))
    client = graph_client(settings, user_agent, logger)
    try:
        meta = read_meta(client, dataset_id, window)
    finally:
        client.close()
    location = settings.ledger
    sent = read_sent(str(location), dataset_id, window) if location else None
    return render(dataset_id, window, meta, sent)


def read_back_input(owner: type[TargetFbConversions]) -> Iterator[str]:
    """``--read-back``'s Singer input: none. The SDK reads it once the target is made (its
    settings checked); reading it runs the read-back and prints the table on stdout."""
    target = owner._current
    if target is not None:
        lines = read_back(target.settings, user_agent=f"{NAME}/{version()}", logger=target.logger)
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
    yield from ()
