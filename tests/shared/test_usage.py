"""fb_graph.usage: how busy (percent) and how long to wait (minutes) from usage headers."""

from __future__ import annotations

import json

from fb_graph.usage import parse_usage


def test_missing_headers_mean_idle():
    usage = parse_usage({})
    assert (usage.percent, usage.regain_minutes, usage.near_limit) == (0.0, 0.0, False)


def test_app_usage_takes_the_busiest_counter():
    usage = parse_usage(
        {"X-App-Usage": json.dumps({"call_count": 12, "total_cputime": 40, "total_time": 7})}
    )
    assert usage.percent == 40 and not usage.near_limit


def test_business_use_case_usage_with_regain_time():
    buc = {
        "111": [
            {"type": "leadgen", "call_count": 95, "total_cputime": 3, "total_time": 4,
             "estimated_time_to_regain_access": 0},
        ],
        "222": [
            {"type": "pages", "call_count": 100, "total_cputime": 1, "total_time": 1,
             "estimated_time_to_regain_access": 12},
        ],
    }  # fmt: skip
    usage = parse_usage(
        {"X-App-Usage": '{"call_count": 5}', "X-Business-Use-Case-Usage": json.dumps(buc)}
    )
    assert usage.percent == 100 and usage.near_limit
    assert usage.regain_minutes == 12 and usage.regain_seconds == 720


def test_a_single_entry_instead_of_a_list_is_read():
    buc = {"111": {"call_count": 91, "estimated_time_to_regain_access": 0.5}}
    usage = parse_usage({"X-Business-Use-Case-Usage": json.dumps(buc)})
    assert usage.percent == 91 and usage.regain_seconds == 30


def test_malformed_headers_are_treated_as_idle_not_a_crash():
    for app, buc in [
        ("not json", "{"),
        ("[]", "[]"),
        ('{"call_count": "lots"}', '{"1": [{"call_count": null}]}'),
        ("", ""),
    ]:
        usage = parse_usage({"X-App-Usage": app, "X-Business-Use-Case-Usage": buc})
        assert usage.percent == 0 and usage.regain_minutes == 0


def test_requests_case_insensitive_headers_work():
    from requests.structures import CaseInsensitiveDict

    headers = CaseInsensitiveDict({"x-app-usage": '{"call_count": 93}'})
    assert parse_usage(headers).near_limit
