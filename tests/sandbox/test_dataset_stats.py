"""Meta's read-back of a dataset, over HTTP: ``GET /{dataset_id}/stats`` (events received per
hour and event name) and ``GET /dataset_quality`` (the offline/CRM data quality per event name),
with the same auth, errors, faults and request log as every other route."""

from __future__ import annotations

import hashlib
import re
import time

import pytest
from sandbox_client import Graph, error_of

from fb_graph.errors import ErrorKind
from fb_graph_sandbox import ALL_PERMISSIONS, EXPIRED_TOKEN
from fb_graph_sandbox.stats import AGGREGATIONS

EM = hashlib.sha256(b"john_smith@gmail.com").hexdigest()
PH = hashlib.sha256(b"16505551212").hexdigest()
FN = hashlib.sha256(b"mary").hexdigest()
LEAD_ID = "1234567890123456"
HOUR = 3600
DAY = 86400
GRAPH_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:00:00\+0000$")


def crm_event(name: str, n: int, age: float = HOUR, **user_data: object) -> dict:
    return {
        "event_name": name,
        "event_time": int(time.time() - age),
        "action_source": "system_generated",
        "event_id": f"{name}-{n}",
        "user_data": user_data or {"lead_id": LEAD_ID, "em": [EM], "ph": [PH]},
        "custom_data": {"event_source": "crm", "lead_event_source": "HubSpot"},
    }


def send(graph: Graph, events: list[dict], partner_agent: str | None = None) -> None:
    body: dict[str, object] = {"data": events}
    if partner_agent:
        body["partner_agent"] = partner_agent
    answer = graph.post(f"{graph.sb.dataset_id}/events", json=body)
    assert answer.status_code == 200, answer.text


def backdate(sb, batch: int, seconds: float) -> None:
    """Make the sandbox believe it received batch ``batch`` ``seconds`` earlier."""
    with sb.app._lock:
        sb.app._event_batches[batch]["time"] -= seconds


def week(now: float | None = None) -> dict[str, object]:
    now = time.time() if now is None else now
    return {"start_time": int(now - 7 * DAY + 60), "end_time": int(now + 60)}


def totals(answer: dict) -> dict[str, int]:
    out: dict[str, int] = {}
    for entry in answer["data"]:
        for item in entry["data"]:
            out[item["value"]] = out.get(item["value"], 0) + item["count"]
    return out


# -- /{dataset_id}/stats -------------------------------------------------------------------


def test_stats_count_every_event_received_per_hour_and_name(sandbox):
    graph = Graph(sandbox)
    send(graph, [crm_event("raw_lead", i) for i in range(3)])
    send(graph, [crm_event("raw_lead", 9), crm_event("won", 1)])
    send(graph, [crm_event("won", 2), crm_event("won", 2)])  # the same event twice: both count
    backdate(sandbox, 0, 30 * HOUR)
    backdate(sandbox, 1, 2 * HOUR)
    answer = graph.get(f"{sandbox.dataset_id}/stats", aggregation="event", **week()).json()
    assert set(answer) == {"data"}
    entries = answer["data"]
    assert len(entries) == 3
    assert all(GRAPH_TIME.match(e["start_time"]) and e["aggregation"] == "event" for e in entries)
    assert [e["start_time"] for e in entries] == sorted(e["start_time"] for e in entries)
    assert entries[0]["data"] == [{"value": "raw_lead", "count": 3}]
    assert entries[1]["data"] == [{"value": "raw_lead", "count": 1}, {"value": "won", "count": 1}]
    assert entries[2]["data"] == [{"value": "won", "count": 2}]
    assert totals(answer) == {"raw_lead": 4, "won": 3}


def test_stats_honour_the_time_range_and_serve_seven_days_at_most(sandbox):
    graph = Graph(sandbox)
    for name in ("a", "b", "c"):
        send(graph, [crm_event(name, 0)])
    backdate(sandbox, 0, 8 * DAY)  # older than Meta serves
    backdate(sandbox, 1, 3 * DAY)
    now = time.time()
    ten_days = {"start_time": int(now - 10 * DAY), "end_time": int(now + 60)}
    assert totals(graph.get(f"{sandbox.dataset_id}/stats", **ten_days).json()) == {"b": 1, "c": 1}
    iso_start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - DAY))
    recent = graph.get(f"{sandbox.dataset_id}/stats", start_time=iso_start).json()
    assert totals(recent) == {"c": 1}  # end_time defaults to now
    until = time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(now - DAY))
    older = graph.get(f"{sandbox.dataset_id}/stats", start_time=int(now - 5 * DAY), end_time=until)
    assert totals(older.json()) == {"b": 1}
    # Without start_time: the day before end_time.
    assert totals(graph.get(f"{sandbox.dataset_id}/stats").json()) == {"c": 1}


def test_event_total_counts_is_one_entry_for_the_range(sandbox):
    graph = Graph(sandbox)
    send(graph, [crm_event("won", i) for i in range(3)] + [crm_event("lost", 0)])
    send(graph, [crm_event("won", 7)])
    backdate(sandbox, 0, 50 * HOUR)
    span = week()
    answer = graph.get(
        f"{sandbox.dataset_id}/stats", aggregation="event_total_counts", **span
    ).json()
    assert answer["data"] == [
        {
            "start_time": time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(span["start_time"])),
            "aggregation": "event_total_counts",
            "data": [{"value": "won", "count": 4}, {"value": "lost", "count": 1}],
        }
    ]


def test_an_hour_lists_its_top_100_event_names(sandbox):
    graph = Graph(sandbox)
    events = [crm_event(f"stage {i:03d}", i) for i in range(101)] + [crm_event("stage 100", 1)]
    send(graph, events)
    (entry,) = graph.get(f"{sandbox.dataset_id}/stats", **week()).json()["data"]
    assert len(entry["data"]) == 100
    assert entry["data"][0] == {"value": "stage 100", "count": 2}
    assert entry["data"][-1]["value"] == "stage 098"


def test_stats_fields_and_an_empty_dataset(sandbox):
    graph = Graph(sandbox)
    assert graph.get(f"{sandbox.dataset_id}/stats", **week()).json() == {"data": []}
    send(graph, [crm_event("won", 0)])
    answer = graph.get(f"{sandbox.dataset_id}/stats", fields="start_time,data", **week()).json()
    assert set(answer["data"][0]) == {"start_time", "data"}
    error = error_of(graph.get(f"{sandbox.dataset_id}/stats", fields="count"))
    assert (error.code, error.kind) == (100, ErrorKind.INVALID)
    assert "nonexisting field (count)" in error.message


@pytest.mark.parametrize(
    ("params", "wording"),
    [({"aggregation": "stage"}, "param aggregation must be one of"),
     ({"aggregation": "url"}, "serves aggregation event and event_total_counts only"),
     ({"start_time": "yesterday"}, "param start_time must be a Unix timestamp"),
     ({"end_time": "2026-13-45"}, "param end_time must be a Unix timestamp")],
)  # fmt: skip
def test_stats_refuse_bad_parameters_with_code_100(sandbox, params, wording):
    error = error_of(Graph(sandbox).get(f"{sandbox.dataset_id}/stats", **params))
    assert (error.status, error.code, error.kind) == (400, 100, ErrorKind.INVALID)
    assert wording in error.message


def test_every_documented_aggregation_is_known():
    assert len(AGGREGATIONS) == 16 and "event" in AGGREGATIONS


def test_stats_filter_by_agent(sandbox):
    graph = Graph(sandbox)
    send(graph, [crm_event("won", 0)], partner_agent="MyCRM_2_1")
    send(
        graph,
        [crm_event("won", 1), crm_event("lost", 1)],
        partner_agent="target-fb-conversions/0.1.0",
    )
    send(graph, [crm_event("won", 2)])
    path = f"{sandbox.dataset_id}/stats"
    assert totals(graph.get(path, agent="mycrm", **week()).json()) == {"won": 1}
    both = totals(graph.get(path, agent="target-fb-conversions", **week()).json())
    assert both == {"won": 1, "lost": 1}
    assert totals(graph.get(path, **week()).json()) == {"won": 3, "lost": 1}


# -- auth and errors -----------------------------------------------------------------------


def test_stats_and_quality_use_the_usual_auth(make_sandbox):
    sb = make_sandbox(tokens={"weak": ALL_PERMISSIONS - {"ads_management"},
                              "EAAgood": ALL_PERMISSIONS})  # fmt: skip
    quality = {"dataset_id": sb.dataset_id, "fields": "offline"}
    for path, params in ((f"{sb.dataset_id}/stats", {}), ("dataset_quality", quality)):
        assert error_of(Graph(sb, token="").get(path, **params)).code == 104
        bad = error_of(Graph(sb, token="EAAwrong").get(path, **params))
        assert (bad.code, bad.kind) == (190, ErrorKind.TOKEN)
        expired = error_of(Graph(sb, token=EXPIRED_TOKEN).get(path, **params))
        assert (expired.code, expired.subcode) == (190, 463)
        weak = error_of(Graph(sb, token="weak").get(path, **params))
        assert (weak.code, weak.kind) == (200, ErrorKind.PERMISSION)
        assert "ads_management" in weak.message
        # The token as a parameter works (what Meta's SDK sends), flagged in the request log.
        url = f"{sb.url}/v26.0/{path}"
        answer = Graph(sb).session.get(url, params={**params, "access_token": "EAAgood"})
        assert answer.status_code == 200, answer.text
    flagged = [r for r in sb.requests() if r["status"] == 200]
    assert len(flagged) == 2 and all(r["token_in_url"] for r in flagged)
    assert all("access_token" not in r["params"] for r in sb.requests())


def test_unknown_datasets_are_code_100(sandbox):
    graph = Graph(sandbox)
    stats = error_of(graph.get("1234567890/stats"))
    assert (stats.code, stats.subcode, stats.kind) == (100, 33, ErrorKind.NOT_FOUND)
    quality = error_of(graph.get("dataset_quality", dataset_id="1234567890", fields="offline"))
    assert (quality.code, quality.subcode) == (100, 2044055)
    assert "1234567890" in quality.message
    missing = error_of(graph.get("dataset_quality", fields="offline"))
    assert (missing.code, "dataset_id is required") == (100, "dataset_id is required")
    assert "dataset_id is required" in missing.message
    post = error_of(graph.post(f"{sandbox.dataset_id}/stats"))
    assert (post.code, post.subcode) == (100, 33)


def test_faults_apply_to_both_routes(sandbox):
    graph = Graph(sandbox)
    sandbox.fault("/stats", kind="code2", times=1)
    sandbox.fault("/dataset_quality", kind="not_json", times=1)
    first = error_of(graph.get(f"{sandbox.dataset_id}/stats"))
    assert first.kind == ErrorKind.TRANSIENT
    assert graph.get(f"{sandbox.dataset_id}/stats").status_code == 200
    broken = graph.get("dataset_quality", dataset_id=sandbox.dataset_id, fields="offline")
    assert broken.status_code == 200
    with pytest.raises(ValueError):
        broken.json()
    again = graph.get("dataset_quality", dataset_id=sandbox.dataset_id, fields="offline")
    assert again.json() == {"offline": []}


def test_a_throttled_stats_call_is_meta_s_ads_account_limit(make_sandbox):
    sb = make_sandbox(call_budget=1)
    graph = Graph(sb)
    assert graph.get(f"{sb.dataset_id}/stats").status_code == 200
    error = error_of(graph.get(f"{sb.dataset_id}/stats"))
    assert (error.code, error.kind) == (80004, ErrorKind.THROTTLED)
    assert error_of(graph.get("dataset_quality", dataset_id=sb.dataset_id)).code == 4


# -- /dataset_quality ----------------------------------------------------------------------


def test_offline_quality_per_event_name(sandbox):
    graph = Graph(sandbox)
    lead_id, email_and_phone = crm_event("won", 0), crm_event("won", 1, em=[EM], ph=[PH])
    send(graph, [lead_id, email_and_phone])  # 10 and 8
    send(graph, [crm_event("won", 2, em=[EM], fn=[FN], ln=[FN])])  # email, two names: 5
    backdate(sandbox, 1, 2 * DAY)  # received two days ago: a second day of uploads
    send(graph, [crm_event("lost", 0, age=2 * DAY, ph=[PH])])  # phone alone: 4, two days late
    answer = graph.get("dataset_quality", dataset_id=sandbox.dataset_id, fields="offline").json()
    assert set(answer) == {"offline"}
    lost, won = answer["offline"]
    assert won["event_name"] == "won"
    assert won["match_key"]["score"] == round((10 + 8 + 5) / 3, 1)
    assert won["match_key"]["coverage"] == {"email": 100.0, "phone": round(200 / 3, 1)}
    assert won["frequency"]["score"] == round(20 / 7, 1)
    assert won["freshness"]["score"] == 8.0  # the median event came an hour and a bit late
    composite = round(0.5 * won["match_key"]["score"] + 0.25 * round(20 / 7, 1) + 0.25 * 8.0, 1)
    assert won["composite"]["score"] == composite
    assert all(isinstance(won[k]["recommendation"], str) and won[k]["recommendation"]
               for k in ("composite", "match_key", "frequency", "freshness"))  # fmt: skip
    assert lost["event_name"] == "lost"
    assert lost["match_key"] == {
        "score": 4.0,
        "recommendation": "Sending email and phone number parameters can help improve your "
        "match key score.",
        "coverage": {"email": 0.0, "phone": 100.0},
    }
    assert lost["freshness"]["score"] == 4.0  # the event was two days old when it came
    assert lost["frequency"]["score"] == round(10 / 7, 1)


def test_quality_field_selection_web_and_what_is_left_out(make_sandbox):
    sb = make_sandbox(messenger_flows_per_page=1)
    graph = Graph(sb)
    send(graph, [crm_event("won", 0)], partner_agent="acme_1_0")
    send(graph, [crm_event("qualified", 0)])
    send(graph, [crm_event("old", 0)])
    backdate(sb, 2, 29 * DAY)  # out of Meta's 28 days
    page = sb.data.page_ids[0]
    psid = sb.messenger_flows(page)[0]["psid"]
    messaging = {"event_name": "LeadSubmitted", "event_time": int(time.time()),
                 "action_source": "business_messaging", "messaging_channel": "messenger",
                 "user_data": {"page_id": page, "page_scoped_user_id": psid}}  # fmt: skip
    send(graph, [messaging])
    query = {"dataset_id": sb.dataset_id}
    names = graph.get("dataset_quality", fields="offline{event_name}", **query).json()
    assert names == {"offline": [{"event_name": "qualified"}, {"event_name": "won"}]}
    nested = graph.get(
        "dataset_quality", fields="offline{event_name, match_key{coverage}},web", **query
    ).json()
    assert nested["web"] == []
    assert nested["offline"][0] == {
        "event_name": "qualified",
        "match_key": {"coverage": {"email": 100.0, "phone": 100.0}},
    }
    web = graph.get("dataset_quality", fields="web{event_match_quality,event_name}", **query).json()
    assert web == {"web": []}
    acme = graph.get("dataset_quality", fields="offline{event_name}", agent_name="acme", **query)
    assert acme.json() == {"offline": [{"event_name": "won"}]}
    for fields, wording in (("", "fields is required"), ("online", "nonexisting field (online)"),
                            ("offline{score}", "nonexisting field (score)"),
                            ("web{composite}", "nonexisting field (composite)"),
                            ("offline{event_name", "Syntax error")):  # fmt: skip
        error = error_of(graph.get("dataset_quality", fields=fields, **query))
        assert (error.code, error.kind) == (100, ErrorKind.INVALID), fields
        assert wording in error.message, fields
