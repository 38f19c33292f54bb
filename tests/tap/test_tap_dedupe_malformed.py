"""Duplicates within a run and malformed leads: emitted once, kept or skipped, never leaked."""

from __future__ import annotations

import time

from tap_helpers import answering, sandbox_lead_ids, tap_config

from tap_fb_leads.tap import TapFbLeads


def test_duplicate_leads_within_a_run_are_emitted_once(sandbox):
    """Pure logic: a pager that serves the same lead twice (as a shifting page could)."""
    tap = TapFbLeads(config=tap_config(sandbox), parse_env_config=False)
    lead = {"id": "1000000000000001", "created_time": "2026-11-20T10:11:12+0000"}
    other = {"id": "1000000000000002", "created_time": "2026-11-20T10:11:13+0000"}

    class TwicePager:
        page_size = 100

        def pages(self, path, params, max_size=None, leads=False):
            yield [dict(lead), dict(other)]
            yield [dict(lead)]

    tap.graph.pager = TwicePager()
    stream = tap.streams["leads"]
    records = list(stream.get_records({"form_id": "5"}))
    assert [r["id"] for r in records] == [lead["id"], other["id"]]


def test_malformed_leads_are_skipped_by_id_without_answers(sandbox, caplog):
    tap = TapFbLeads(config=tap_config(sandbox), parse_env_config=False)

    class BadPager:
        page_size = 100

        def pages(self, path, params, max_size=None, leads=False):
            yield [
                {"id": "1000000000000003", "field_data": [{"name": "email", "values": ["z@q.io"]}]},
                {"id": "1000000000000004", "created_time": "2026-11-20T10:11:12+0000"},
            ]

    tap.graph.pager = BadPager()
    records = list(tap.streams["leads"].get_records({"form_id": "5"}))
    assert [r["id"] for r in records] == ["1000000000000004"]
    assert "lead 1000000000000003 has no created_time" in caplog.text
    assert "z@q.io" not in caplog.text


def test_malformed_leads_over_http_are_skipped_or_kept_without_leaking(make_sandbox, run_tap):
    """A lead whose field_data has no question key is kept (answers null); the run goes on."""
    sb = make_sandbox(forms_per_page=1, leads_per_form=40)
    (form_id,) = sb.data.form_ids()
    (odd,) = sb.app.data.add_leads(
        form_id, 1, created_time=int(time.time()) - 3600, field_data=[{"values": ["hid@x.io"]}]
    )
    time.sleep(1.1)
    result = run_tap(tap_config(sb))
    assert result.returncode == 0, result.stderr
    records = {r["id"]: r for r in result.records("leads")}
    assert set(records) == sandbox_lead_ids(sb)
    assert records[odd["id"]]["answers"] is None
    assert f"lead {odd['id']}: answers left empty" in result.stderr
    assert "hid@x.io" not in result.stderr


def test_malformed_entries_of_an_answer_are_counted_and_skipped_the_rest_kept(run_tap):
    """A form entry that is a JSON string crashed the run; a lead id that is not a number was
    emitted. Each is skipped with one warning naming its Page or form, and counted; the good
    entries around them are kept. (A stub serves these shapes: the sandbox cannot.)"""
    at = time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(time.time() - 3600))
    form = {"id": "5550001", "name": "F", "created_time": at, "leads_count": 4}
    private = [{"name": "email", "values": ["priv@x.io"]}]
    good = [{"id": f"100000000000001{i}", "created_time": at, "field_data": []} for i in (1, 2)]
    answers = {
        "123/leadgen_forms": {"data": ["abc", form, {"id": "not-a-form"}]},
        "5550001/leads": {
            "data": [
                good[0],
                "abc",
                {"id": "abc-not-a-lead", "created_time": at, "field_data": private},
                good[1],
            ]
        },
    }
    with answering(answers) as url:
        result = run_tap({"access_token": "tok-1234", "page_ids": ["123"], "api_url": url})
    assert result.returncode == 0, result.stderr
    assert [f["id"] for f in result.records("forms")] == ["5550001"]
    assert result.ids() == [good[0]["id"], good[1]["id"]]
    assert result.stderr.count("Skipping a malformed form of Page 123:") == 2
    assert result.stderr.count("Skipping a malformed lead of form 5550001:") == 2
    assert "Page 123: 2 malformed forms skipped." in result.stderr
    assert "Form 5550001: 0 duplicate leads dropped, 2 malformed leads skipped." in result.stderr
    for private_text in ("priv@x.io", "abc-not-a-lead", "not-a-form", "Traceback"):
        assert private_text not in result.stderr
