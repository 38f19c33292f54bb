"""What each stream emits: forms, leads (organic, Unicode keys, multi-value answers),
disclaimer responses at no extra call, the form_ids allow-list and ad_ids mode."""

from __future__ import annotations

import copy
import hashlib

from tap_helpers import catalog_selecting, lead_requests, sandbox_lead_ids, tap_config

UNICODE_KEY = "¿cuál_es_tu_presupuesto?"


def test_forms_full_table_with_every_field(make_sandbox, run_tap):
    sb = make_sandbox(pages=2, forms_per_page=4, leads_per_form=5)
    result = run_tap(tap_config(sb))
    assert result.returncode == 0, result.stderr
    forms = result.records("forms")
    expected = {f["id"]: f for page in sb.data.page_ids for f in sb.data.forms(page)}
    assert sorted(f["id"] for f in forms) == sorted(expected)
    assert {f["status"] for f in forms} == {"ACTIVE", "ARCHIVED", "DELETED", "DRAFT"}
    for form in forms:
        source = expected[form["id"]]
        assert form["page_id"] == source["page_id"]
        assert form["questions"] == source["questions"]
        assert form["leads_count"] == source["leads_count"]
        assert form["created_time"].endswith("+00:00")
        assert isinstance(form["id"], str)
    # One forms call per Page, nothing per form.
    assert len([r for r in sb.requests() if r["path"].endswith("/leadgen_forms")]) == 2


def test_leads_carry_field_data_as_sent_and_flat_answers(make_sandbox, run_tap):
    sb = make_sandbox(forms_per_page=1, leads_per_form=90)
    (form_id,) = sb.data.form_ids()
    source = {lead["id"]: lead for lead in sb.data.leads(form_id)}
    result = run_tap(tap_config(sb))
    assert result.returncode == 0, result.stderr
    leads = result.records("leads")
    assert len(leads) == 90
    multi = organic = 0
    for lead in leads:
        raw = source[lead["id"]]
        assert lead["field_data"] == raw["field_data"]
        for item in raw["field_data"]:
            values = item["values"]
            answer = lead["answers"][item["name"]]
            if len(values) > 1:
                multi += 1
                assert answer == values
            elif values:
                assert answer == values[0]
        assert UNICODE_KEY in lead["answers"]
        assert lead["created_time"].endswith("+00:00")
        assert lead["form_id"] == form_id
        if raw.get("is_organic"):
            organic += 1
            assert lead["is_organic"] is True and not lead.get("ad_id")
        else:
            assert lead["ad_id"] == raw["ad_id"] and isinstance(lead["ad_id"], str)
            assert lead["campaign_name"] == raw["campaign_name"]
    assert multi > 0 and organic > 0


def test_disclaimer_responses_cost_no_extra_call(make_sandbox, run_tap):
    sb = make_sandbox(forms_per_page=2, leads_per_form=150)
    config = tap_config(sb, page_size=50)
    all_streams = run_tap(config)
    assert all_streams.returncode == 0, all_streams.stderr
    calls_with = [(r["path"], r["params"].get("after")) for r in sb.requests()]

    catalog = catalog_selecting(run_tap, config, {"forms", "leads"})
    sb.reset()  # the calls of the run alone (--discover read the forms too)
    without = run_tap(config, catalog=catalog)
    assert without.returncode == 0, without.stderr
    assert without.records("disclaimer_responses") == []
    calls_without = [(r["path"], r["params"].get("after")) for r in sb.requests()]
    assert calls_with == calls_without

    responses = all_streams.records("disclaimer_responses")
    expected = {
        (lead["id"], r["checkbox_key"]): r["is_checked"] == "1"
        for form_id in sb.data.form_ids()
        for lead in sb.data.leads(form_id)
        for r in lead.get("custom_disclaimer_responses") or []
    }
    assert {(r["lead_id"], r["checkbox_key"]): r["is_checked"] for r in responses} == expected
    assert len(responses) == len(expected)
    assert {True, False} == {r["is_checked"] for r in responses}
    leads = {lead["id"]: lead for lead in all_streams.records("leads")}
    for response in responses:
        assert response["form_id"] == leads[response["lead_id"]]["form_id"]
        assert response["created_time"] == leads[response["lead_id"]]["created_time"]


def test_disclaimer_responses_alone_still_read_the_leads_once(make_sandbox, run_tap):
    sb = make_sandbox(forms_per_page=1, leads_per_form=100)
    config = tap_config(sb, page_size=50)
    result = run_tap(config, catalog=catalog_selecting(run_tap, config, {"disclaimer_responses"}))
    assert result.returncode == 0, result.stderr
    assert result.records("leads") == [] and result.records("forms") == []
    assert len(result.records("disclaimer_responses")) == 200
    assert len(lead_requests(sb)) == 2
    schemas = [m["stream"] for m in result.messages if m["type"] == "SCHEMA"]
    assert schemas.count("disclaimer_responses") == 1


def test_form_ids_allow_list(make_sandbox, run_tap):
    sb = make_sandbox(forms_per_page=3, leads_per_form=40)
    wanted, *_ = sb.data.form_ids()
    result = run_tap(tap_config(sb, form_ids=[wanted, "123456789"]))
    assert result.returncode == 0, result.stderr
    assert [f["id"] for f in result.records("forms")] == [wanted]
    assert set(result.ids()) == sandbox_lead_ids(sb, [wanted])
    assert {r["path"].split("/")[-2] for r in lead_requests(sb)} == {wanted}
    assert "Form 123456789 of form_ids is not a lead form" in result.stderr


def test_ad_ids_mode_reads_the_ads_leads(make_sandbox, run_tap):
    sb = make_sandbox(forms_per_page=2, leads_per_form=90)
    form_a, form_b = sb.data.form_ids()
    ads = [sb.data.ad_ids(form_a)[0], sb.data.ad_ids(form_b)[1]]
    result = run_tap(tap_config(sb, ad_ids=ads, page_size=20))
    assert result.returncode == 0, result.stderr
    expected = {
        lead["id"]
        for form_id in (form_a, form_b)
        for lead in sb.data.leads(form_id)
        if lead.get("ad_id") in ads
    }
    assert expected and set(result.ids()) == expected
    assert len(result.ids()) == len(expected)
    assert {r["path"].split("/")[-2] for r in lead_requests(sb)} == set(ads)
    partitions = result.final_state["bookmarks"]["leads"]["partitions"]
    assert sorted(p["context"]["ad_id"] for p in partitions) == sorted(ads)
    assert len(result.records("disclaimer_responses")) == 2 * len(expected)


def test_start_date_older_than_retention_warns(sandbox, run_tap):
    result = run_tap(tap_config(sandbox, start_date="2020-01-01T00:00:00Z"))
    assert result.returncode == 0, result.stderr
    assert "start_date 2020-01-01T00:00:00+00:00 is more than 90 days ago" in result.stderr
    assert set(result.ids()) == sandbox_lead_ids(sandbox)


def test_catalog_ids_are_strings():
    from tap_fb_leads.schemas import FORMS_SCHEMA, LEADS_SCHEMA

    for schema in (FORMS_SCHEMA, LEADS_SCHEMA):
        for name, prop in copy.deepcopy(schema)["properties"].items():
            if name == "id" or name.endswith("_id"):
                assert "string" in prop["type"], name


def test_deselected_properties_are_left_out(make_sandbox, run_tap):
    sb = make_sandbox(forms_per_page=1, leads_per_form=30)
    config = tap_config(sb)
    catalog = catalog_selecting(run_tap, config, {"leads", "disclaimer_responses"})
    for stream in catalog["streams"]:
        if stream["tap_stream_id"] == "leads":
            for entry in stream["metadata"]:
                if entry["breadcrumb"] in (["properties", "field_data"], ["properties", "answers"]):
                    entry["metadata"]["selected"] = False
    result = run_tap(config, catalog=catalog)
    assert result.returncode == 0, result.stderr
    leads = result.records("leads")
    assert len(leads) == 30
    assert all("field_data" not in r and "answers" not in r for r in leads)
    assert all(("created_time" in r and "ad_id" in r) or r.get("is_organic") for r in leads)
    assert len(result.records("disclaimer_responses")) == 60


def test_stream_maps_can_drop_answers_and_rename_a_stream(make_sandbox, run_tap):
    sb = make_sandbox(forms_per_page=1, leads_per_form=30)
    (form_id,) = sb.data.form_ids()
    emails = {
        lead["id"]: next(i["values"][0] for i in lead["field_data"] if i["name"] == "email")
        for lead in sb.data.leads(form_id)
    }
    config = tap_config(
        sb,
        stream_maps={
            "leads": {
                "email_md5": "md5(answers['email'])",
                "answers": "__NULL__",
                "field_data": "__NULL__",
            },
            "disclaimer_responses": {"__alias__": "consents"},
        },
    )
    result = run_tap(config)
    assert result.returncode == 0, result.stderr
    leads = result.records("leads")
    assert len(leads) == 30
    for lead in leads:
        assert "answers" not in lead and "field_data" not in lead
        assert lead["email_md5"] == hashlib.md5(emails[lead["id"]].encode()).hexdigest()  # noqa: S324
    assert result.records("disclaimer_responses") == []
    assert len(result.records("consents")) == 60
    for value in emails.values():
        assert value not in result.stdout
