"""What Meta tells about a dataset's events: ``GET /{dataset_id}/stats`` and
``GET /dataset_quality`` (docs/sandbox.md, *Dataset stats and quality*).

Both read the events the sandbox accepted (``POST /{dataset_id}/events``), counted by the
time the sandbox received them. Meta documents the request and the answer's shape of both; it
does not document how its numbers are made, so the numbers here are the sandbox's own,
deterministic and written down below:

* ``/stats``, aggregation ``event``: one entry per hour with events, oldest first, each
  ``{"start_time", "aggregation": "event", "data": [{"value": <event_name>, "count": n}]}``
  (at most 100 names an hour, the most frequent first, as Meta's "top 100 events");
  ``event_total_counts``: one entry for the whole range. Every copy of an event counts
  (Meta's deduplication is not applied). Data older than 7 days before the call is not served.
* ``/dataset_quality``, field ``offline`` (Meta's Dataset Quality API for offline events): per
  event name of the CRM events (``action_source`` ``system_generated``) received in the last 28
  days, ``composite``, ``match_key`` (with ``coverage`` of email and phone), ``frequency`` and
  ``freshness``, each ``{"score": 0-10, "recommendation"}``. ``web`` is always empty: the
  sandbox takes no website events.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fb_graph_sandbox import conversions, failures
from fb_graph_sandbox.failures import GraphFailure

if TYPE_CHECKING:
    from fb_graph_sandbox.api import Call, GraphApp

HOUR = 3600
DAY = 86400
STATS_MAX_AGE = 7 * DAY
"""Meta: "You can get the data up to seven days from the request time"."""
STATS_DEFAULT_RANGE = DAY
"""``start_time`` when not given (Meta documents no default): a day before ``end_time``."""
TOP_EVENTS = 100
QUALITY_WINDOW = 28 * DAY
"""Meta's offline data quality score looks at the last 28 days."""
FREQUENCY_DAYS = 7

AGGREGATIONS = (
    "browser_type", "custom_data_field", "device_os", "device_type", "event", "host",
    "match_keys", "had_pii", "pixel_fire", "event_detection_method", "url", "event_value_count",
    "url_by_rule", "event_total_counts", "event_source", "event_processing_results",
)  # fmt: skip
"""Meta's ``aggregation`` enum (AdsPixelStatsResult.Aggregation)."""
SERVED_AGGREGATIONS = ("event", "event_total_counts")
STATS_FIELDS = ("aggregation", "data", "start_time")
"""AdsPixelStatsResult's fields."""

OFFLINE_FIELDS = ("event_name", "composite", "match_key", "frequency", "freshness")
WEB_FIELDS = (
    "event_name", "event_match_quality", "event_potential_aly_acr_increase", "acr",
    "event_coverage", "dedupe_key_feedback", "data_freshness",
)  # fmt: skip
UNKNOWN_DATASET_SUBCODE = 2044055
"""Meta's page lists 2044055 for "The dataset_id that was inputted doesn't exist"."""

OTHER_KEYS = ("fn", "ln", "db", "ge", "ct", "st", "zp", "country", "external_id")


def route(
    app: GraphApp, call: Call, version: str, parts: list[str], token: str,
    permissions: frozenset[str],
) -> bytes | None:  # fmt: skip
    """The answer when the call is one of these routes, else None."""
    if parts == ["dataset_quality"]:
        if call.method != "GET":
            raise failures.unsupported("dataset_quality", call.method)
        return _dumps(quality(app, call, permissions))
    if len(parts) == 2 and parts[1] == "stats" and parts[0] in app.config.dataset_ids:
        if call.method != "GET":
            raise failures.unsupported(parts[0], call.method)
        app.need(permissions, "ads_management")
        return _dumps(stats(app, call, parts[0]))
    return None


def _dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


# -- received events -----------------------------------------------------------------------


def agent_name(partner_agent: object) -> str:
    """Meta's "normalized" ``partner_agent``: ``[partner_name]_[major]_[minor]`` becomes
    ``partner_name`` in lowercase; the sandbox also cuts at ``/`` (``name/1.2.3``)."""
    text = str(partner_agent or "").strip().lower()
    return re.split(r"[_/]", text, maxsplit=1)[0]


def received(
    app: GraphApp, dataset_id: str, since: float, until: float, agent: str | None
) -> Iterator[tuple[float, Mapping[str, Any]]]:
    """(time received, event) of every event accepted on the dataset in ``[since, until)``."""
    wanted = agent_name(agent) if agent else None
    for batch in app.event_batches():
        if batch["dataset_id"] != dataset_id or batch.get("legacy"):
            continue
        if not since <= batch["time"] < until:
            continue
        if wanted is not None and agent_name(batch.get("partner_agent")) != wanted:
            continue
        for event in batch["data"]:
            if isinstance(event, Mapping):
                yield batch["time"], event


# -- /{dataset_id}/stats -------------------------------------------------------------------


def graph_time(unix: float) -> str:
    """Meta's datetime: ``2026-11-20T10:00:00+0000``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(unix))


def time_param(call: Call, name: str, default: float) -> float:
    """``start_time`` / ``end_time``: Unix seconds or an ISO 8601 time (UTC without a zone)."""
    raw = call.params.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        pass
    text = raw.replace("Z", "+00:00")
    text = re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", text)
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise failures.invalid_parameter(
            f"(#100) param {name} must be a Unix timestamp or an ISO 8601 datetime."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.timestamp()


def stats(app: GraphApp, call: Call, dataset_id: str) -> dict:
    """``GET /{dataset_id}/stats``: events received per hour (or in total) by event name."""
    aggregation = call.params.get("aggregation") or "event"
    if aggregation not in AGGREGATIONS:
        raise failures.invalid_parameter(
            f"(#100) param aggregation must be one of {{{', '.join(AGGREGATIONS)}}} - got "
            f"'{aggregation}'."
        )
    if aggregation not in SERVED_AGGREGATIONS:
        raise failures.invalid_parameter(
            f"(#100) The sandbox serves aggregation {' and '.join(SERVED_AGGREGATIONS)} only, "
            f"not '{aggregation}'."
        )
    now = time.time()
    until = time_param(call, "end_time", now)
    since = time_param(call, "start_time", until - STATS_DEFAULT_RANGE)
    since = max(since, now - STATS_MAX_AGE)
    fields = _stats_fields(call.params.get("fields"))
    hours: dict[int, Counter[str]] = defaultdict(Counter)
    for at, event in received(app, dataset_id, since, until, call.params.get("agent")):
        bucket = since if aggregation == "event_total_counts" else int(at // HOUR) * HOUR
        hours[int(bucket)][str(event.get("event_name"))] += 1
    entries = [
        {
            "start_time": graph_time(start),
            "aggregation": aggregation,
            "data": [
                {"value": name, "count": count}
                for name, count in _ranked(counts, None if aggregation != "event" else TOP_EVENTS)
            ],
        }
        for start, counts in sorted(hours.items())
    ]
    return {"data": [{k: v for k, v in entry.items() if k in fields} for entry in entries]}


def _ranked(counts: Counter[str], top: int | None) -> list[tuple[str, int]]:
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ranked[:top] if top is not None else ranked


def _stats_fields(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return STATS_FIELDS
    names = [name for name, _ in parse_selection(raw)]
    for name in names:
        if name not in STATS_FIELDS:
            raise failures.nonexisting_field(name, "AdsPixelStatsResult")
    return tuple(names)


# -- /dataset_quality ----------------------------------------------------------------------

Selection = Sequence[tuple[str, "Selection | None"]]


def parse_selection(raw: str) -> list[tuple[str, Selection | None]]:
    """``a,b{c,d{e}}`` -> ``[("a", None), ("b", [("c", None), ("d", [("e", None)])])]``;
    spaces are allowed (Meta's examples have them)."""
    items: list[tuple[str, Selection | None]] = []
    depth = 0
    name = ""
    inner = ""
    for ch in raw + ",":
        if depth == 0:
            if ch == "{":
                depth = 1
            elif ch == ",":
                if name.strip():
                    items.append((name.strip(), parse_selection(inner) if inner else None))
                name, inner = "", ""
            elif ch == "}":
                raise failures.invalid_parameter(f"(#100) Syntax error in fields: {raw!r}")
            else:
                name += ch
        else:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    continue
            inner += ch
    if depth:
        raise failures.invalid_parameter(f"(#100) Syntax error in fields: {raw!r}")
    return items


def _select(value: Any, selection: Selection | None, node: str) -> Any:
    """The parts of ``value`` (an object) that ``selection`` names."""
    if selection is None or not isinstance(value, dict):
        return value
    out = {}
    for name, inner in selection:
        if name not in value:
            raise failures.nonexisting_field(name, node)
        out[name] = _select(value[name], inner, node)
    return out


def quality(app: GraphApp, call: Call, permissions: frozenset[str]) -> dict:
    """``GET /dataset_quality?dataset_id=&fields=offline{...}``."""
    dataset_id = call.params.get("dataset_id", "").strip()
    if not dataset_id:
        raise failures.invalid_parameter("(#100) The parameter dataset_id is required")
    if dataset_id not in app.config.dataset_ids:
        raise GraphFailure(
            400,
            f"(#100) The dataset_id {dataset_id} that was inputted doesn't exist, or this "
            "token cannot use it.",
            100,
            subcode=UNKNOWN_DATASET_SUBCODE,
        )
    app.need(permissions, "ads_management")
    raw = call.params.get("fields", "")
    selection = parse_selection(raw) if raw.strip() else []
    if not selection:
        raise failures.invalid_parameter(
            "(#100) The parameter fields is required: ask for offline (offline and CRM events) "
            "or web (website events)."
        )
    answer: dict[str, list] = {}
    for name, inner in selection:
        if name == "offline":
            rows = offline_quality(app, dataset_id, call.params.get("agent_name"))
            answer["offline"] = [_select(row, inner, "OfflineDatasetQuality") for row in rows]
        elif name == "web":
            for sub, _ in inner or ():
                if sub not in WEB_FIELDS:
                    raise failures.nonexisting_field(sub, "AdsPixelCAPIIntegrationQuality")
            answer["web"] = []  # the sandbox takes no website events
        else:
            raise failures.nonexisting_field(name, "DatasetQuality")
    return answer


def offline_quality(app: GraphApp, dataset_id: str, agent: str | None) -> list[dict]:
    """One row per event name of the CRM events received in the last 28 days."""
    now = time.time()
    groups: dict[str, list[tuple[float, Mapping[str, Any]]]] = defaultdict(list)
    for at, event in received(app, dataset_id, now - QUALITY_WINDOW, now + 1, agent):
        if not conversions.is_messaging(event):
            groups[str(event.get("event_name"))].append((at, event))
    return [event_quality(name, groups[name], now) for name in sorted(groups)]


def _has(user_data: Mapping[str, Any], key: str) -> bool:
    value = user_data.get(key)
    if isinstance(value, list):
        return any(item not in (None, "") for item in value)
    return value not in (None, "")


def match_points(user_data: Mapping[str, Any]) -> float:
    """The sandbox's match value of one event, 0-10: a lead id matches the lead itself (10);
    otherwise email 4 and phone 4, and 0.5 for each other key (name, birth date, gender, city,
    state, zip, country, external id), at most 10."""
    if _has(user_data, "lead_id"):
        return 10.0
    points = 4.0 * _has(user_data, "em") + 4.0 * _has(user_data, "ph")
    points += 0.5 * sum(_has(user_data, key) for key in OTHER_KEYS)
    return min(points, 10.0)


def freshness_score(delay_seconds: float) -> float:
    """From the median delay between ``event_time`` and the upload."""
    for limit, score in ((HOUR, 10.0), (6 * HOUR, 8.0), (DAY, 6.0), (3 * DAY, 4.0)):
        if delay_seconds <= limit:
            return score
    return 2.0


def event_quality(name: str, events: list[tuple[float, Mapping[str, Any]]], now: float) -> dict:
    """Meta's offline row for one event name, with the sandbox's scores."""
    count = len(events)
    user_data = [_user_data(e) for _, e in events]
    email = 100.0 * sum(_has(u, "em") for u in user_data) / count
    phone = 100.0 * sum(_has(u, "ph") for u in user_data) / count
    match = round(sum([match_points(u) for u in user_data]) / count, 1)
    today = int(now // DAY)
    days = {int(at // DAY) for at, _ in events if today - int(at // DAY) < FREQUENCY_DAYS}
    frequency = round(10.0 * len(days) / FREQUENCY_DAYS, 1)
    delays = [at - _event_time(e, at) for at, e in events]
    freshness = freshness_score(statistics.median(delays))
    composite = round(0.5 * match + 0.25 * frequency + 0.25 * freshness, 1)
    return {
        "event_name": name,
        "composite": {"score": composite, "recommendation": _composite_advice(composite)},
        "match_key": {
            "score": match,
            "recommendation": (
                "Your match keys are good."
                if match >= 8.0
                else "Sending email and phone number parameters can help improve your match "
                "key score."
            ),
            "coverage": {"email": round(email, 1), "phone": round(phone, 1)},
        },
        "frequency": {
            "score": frequency,
            "recommendation": (
                "You share your offline data every day."
                if frequency >= 10.0
                else "Sharing your offline data more often can help improve your frequency "
                "score and help you get better ad outcomes."
            ),
        },
        "freshness": {
            "score": freshness,
            "recommendation": (
                "Your offline data arrives soon after the events."
                if freshness >= 8.0
                else "Sending your most recent offline conversion data sooner can help improve "
                "your score and help you get better ad outcomes."
            ),
        },
    }


def _user_data(event: Mapping[str, Any]) -> Mapping[str, Any]:
    user_data = event.get("user_data")
    return user_data if isinstance(user_data, Mapping) else {}


def _event_time(event: Mapping[str, Any], default: float) -> float:
    try:
        return float(event.get("event_time"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default


def _composite_advice(score: float) -> str:
    if score >= 8.5:
        return "Your offline data quality score is good."
    if score >= 6.0:
        return "Your offline data quality score is ok, but could be improved."
    return "Your offline data quality score is low: see the match key, frequency and freshness."
