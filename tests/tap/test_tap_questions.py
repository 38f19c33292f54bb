"""Question columns (issue 14): discovery reads the Pages' forms and declares every question
key as a property of ``leads.answers``, typed as the records hold it."""

from __future__ import annotations

import json
import time

import pytest
from jsonschema import Draft7Validator
from tap_helpers import tap_config

from fb_graph.errors import ADVICE, ErrorKind
from fb_graph_sandbox.data import UNICODE_KEY, questions
from tap_fb_leads.answer_names import ascii_name
from tap_fb_leads.questions import ONE_VALUE, SEVERAL_VALUES, AnswerColumns

STRING = ONE_VALUE["type"]
SEVERAL = SEVERAL_VALUES["type"]
SANDBOX_KEYS = [q["key"] for q in questions()]


def discover(run_tap, config: dict) -> dict:
    result = run_tap(config, extra_args=("--discover",))
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def answers_of(catalog: dict) -> dict:
    (leads,) = [s for s in catalog["streams"] if s["tap_stream_id"] == "leads"]
    return leads["schema"]["properties"]["answers"]


def declared(catalog: dict) -> dict[str, list[str]]:
    return {k: v["type"] for k, v in answers_of(catalog)["properties"].items()}


def forms_calls(sb) -> int:
    return len([r for r in sb.requests() if r["path"].endswith("/leadgen_forms")])


def schema_message(result, stream: str = "leads") -> dict:
    """The stream's schema as the SCHEMA messages give it (the same in each)."""
    schemas = [m["schema"] for m in result.messages if m["type"] == "SCHEMA"
               and m["stream"] == stream]  # fmt: skip
    assert schemas and all(schema == schemas[0] for schema in schemas)
    return schemas[0]


def flat(field_data: list[dict]) -> dict:
    """The answers as Meta sent them, one value as itself, several as a list."""
    return {a["name"]: a["values"][0] if len(a["values"]) == 1 else a["values"] for a in field_data}


def arrive(sb, form_id: str, count: int) -> list[dict]:
    """New leads, a few seconds old: a run leaves the leads of its own first second to the next
    run, and these must be in this one."""
    return sb.add_leads(form_id, count, created_time=int(time.time()) - 10)


def error_lines(stderr: str) -> list[str]:
    return [line.split("| ", 3)[-1] for line in stderr.splitlines() if "| ERROR" in line]


def test_every_question_key_is_declared_typed_as_the_answers_are_written(make_sandbox, run_tap):
    sb = make_sandbox(forms_per_page=2)
    catalog = discover(run_tap, tap_config(sb))
    answers = answers_of(catalog)
    assert list(answers["properties"]) == SANDBOX_KEYS  # in the forms' order
    assert UNICODE_KEY in answers["properties"]  # a Unicode key stays the key
    assert answers["additionalProperties"] is True and answers["type"] == ["object", "null"]
    kinds = declared(catalog)
    with_options = {q["key"] for q in questions() if q.get("options")}
    assert {k for k, v in kinds.items() if v == SEVERAL} == with_options
    assert all(kinds[k] == STRING for k in set(SANDBOX_KEYS) - with_options)
    products = answers["properties"]["which_products_interest_you?"]
    assert products["items"] == {"type": "string"}
    assert products["description"] == "Which products interest you? (choose all that apply)"
    assert forms_calls(sb) == 1  # one call per Page (and per 100 forms)


def test_keys_of_all_forms_of_all_pages_are_merged_with_the_wider_type(make_sandbox, run_tap):
    sb = make_sandbox(pages=2, forms_per_page=2)
    first, second = sb.data.page_ids
    a, b = sb.data.form_ids(first)
    c, _ = sb.data.form_ids(second)
    sb.add_question(a, "budget_note")  # a text answer in one form...
    sb.add_question(c, "budget_note", options=["low", "high"])  # ...a choice in another
    sb.add_question(b, "only_in_b")
    sb.add_question(c, "お名前", type="CUSTOM")
    kinds = declared(discover(run_tap, tap_config(sb)))
    assert list(kinds) == [*SANDBOX_KEYS, "budget_note", "only_in_b", "お名前"]
    assert kinds["budget_note"] == SEVERAL
    assert kinds["only_in_b"] == kinds["お名前"] == STRING
    assert forms_calls(sb) == 2
    # form_ids: only the questions of the forms read.
    only_a = declared(discover(run_tap, tap_config(sb, form_ids=[a])))
    assert list(only_a) == [*SANDBOX_KEYS, "budget_note"] and only_a["budget_note"] == STRING


def test_a_question_added_later_is_declared_at_the_next_discovery(make_sandbox, run_tap):
    sb = make_sandbox(forms_per_page=1, leads_per_form=5)
    (form_id,) = sb.data.form_ids()
    before = declared(discover(run_tap, tap_config(sb)))
    sb.add_question(form_id, "¿cómo_nos_conociste?", options=["radio", "web", "amigos"])
    (lead,) = arrive(sb, form_id, 1)
    after = declared(discover(run_tap, tap_config(sb)))
    assert "¿cómo_nos_conociste?" not in before
    assert after == {**before, "¿cómo_nos_conociste?": SEVERAL}
    # A run without --catalog discovers it too: its SCHEMA declares it, its record holds it.
    result = run_tap(tap_config(sb))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "¿cómo_nos_conociste?" in schema_message(result)["properties"]["answers"]["properties"]
    (record,) = [r for r in result.records("leads") if r["id"] == lead["id"]]
    key = "¿cómo_nos_conociste?"
    assert record["answers"][key] == flat(lead["field_data"])[key]


def test_a_catalog_passed_in_is_used_as_it_is_and_forms_are_not_read_for_it(make_sandbox, run_tap):
    sb = make_sandbox(forms_per_page=2, leads_per_form=10)
    catalog = discover(run_tap, tap_config(sb))
    (form_id, _) = sb.data.form_ids()
    answers = answers_of(catalog)
    del answers["properties"]["city"]  # the user's edits are kept
    answers["properties"]["from_the_catalog"] = {"type": ["string", "null"]}
    sb.add_question(form_id, "added_after_discovery")
    (lead,) = arrive(sb, form_id, 1)
    calls_before = forms_calls(sb)
    result = run_tap(tap_config(sb), catalog=catalog)
    assert result.returncode == 0, result.stderr[-2000:]
    properties = schema_message(result)["properties"]["answers"]["properties"]
    assert "from_the_catalog" in properties and "city" not in properties
    assert "added_after_discovery" not in properties
    assert forms_calls(sb) - calls_before == 1  # the forms stream's own read, no discovery
    # Nothing is lost: an undeclared key (added after discovery, or removed from the
    # catalog) is still in the record, as in field_data.
    (record,) = [r for r in result.records("leads") if r["id"] == lead["id"]]
    assert record["answers"]["added_after_discovery"] == "answer " + str(
        _index_of_last(sb, form_id)
    )
    assert all("city" in r["answers"] for r in result.records("leads"))


def _index_of_last(sb, form_id: str) -> int:
    form = sb.data.form_by_id[form_id]
    return form.count + form.added_made - 1


def test_records_validate_against_the_declared_schema(make_sandbox, run_tap):
    sb = make_sandbox(pages=2, forms_per_page=2, leads_per_form=30)
    form_id = sb.data.form_ids()[0]
    sb.add_question(form_id, "ご希望の連絡方法", options=["mail", "phone", "visit"])
    added = arrive(sb, form_id, 6)  # every third lead picks two options: a list
    result = run_tap(tap_config(sb))
    assert result.returncode == 0, result.stderr[-2000:]
    schema = schema_message(result)
    assert "ご希望の連絡方法" in schema["properties"]["answers"]["properties"]
    validator = Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)
    records = result.records("leads")
    assert len(records) == 4 * 30 + 6
    for record in records:
        assert not list(validator.iter_errors(record)), record["id"]
    shapes = {type(r["answers"]["ご希望の連絡方法"]) for r in records
              if r["id"] in {a["id"] for a in added}}  # fmt: skip
    assert shapes == {str, list}
    assert {type(r["answers"]["which_products_interest_you?"]) for r in records} == {str, list}


def test_ascii_answer_keys_names_each_key_stably_in_schema_and_records(make_sandbox, run_tap):
    sb = make_sandbox(forms_per_page=1, leads_per_form=12)
    (form_id,) = sb.data.form_ids()
    sb.add_question(form_id, "ご希望の連絡方法", options=["mail", "phone"])
    sb.add_question(form_id, "Email")  # differs from email only by case
    new = arrive(sb, form_id, 3)
    config = tap_config(sb, ascii_answer_keys=True)
    properties = answers_of(discover(run_tap, config))["properties"]
    names = {key: ascii_name(key) for key in [*SANDBOX_KEYS, "ご希望の連絡方法", "Email"]}
    assert list(properties) == list(names.values())
    assert len(set(names.values())) == len(names)  # no two keys share a name
    assert all(name.isascii() and len(name) <= 54 for name in names.values())
    assert properties[names[UNICODE_KEY]]["description"] == (
        "¿cuál_es_tu_presupuesto?: ¿Cuál es tu presupuesto?"
    )
    result = run_tap(config)
    assert result.returncode == 0, result.stderr[-2000:]
    schema = schema_message(result)
    validator = Draft7Validator(schema)
    for record in result.records("leads"):
        assert not list(validator.iter_errors(record))
        assert set(record["answers"]) <= set(names.values())
        for key, answer in flat(record["field_data"]).items():
            assert record["answers"][names[key]] == answer
    (latest,) = [r for r in result.records("leads") if r["id"] == new[-1]["id"]]
    assert names["ご希望の連絡方法"] in latest["answers"] and names["Email"] in latest["answers"]


def test_ascii_names_are_fixed_by_the_key_alone():
    """The names are part of users' warehouse tables: they must never change."""
    assert ascii_name("email") == "email"
    assert ascii_name("full_name") == "full_name"
    assert ascii_name(UNICODE_KEY) == "cual_es_tu_presupuesto_514d4ebc"
    assert ascii_name("which_products_interest_you?") == "which_products_interest_you_3ba6ee0b"
    assert ascii_name("ご希望の連絡方法") == "q_d5f1aecb"
    assert ascii_name("Email") == "email_969ccbd3"
    long_key = "what_is_the_best_time_of_the_day_to_reach_you_by_phone_during_the_week"
    assert ascii_name(long_key) == ascii_name(long_key) and len(ascii_name(long_key)) == 54
    assert ascii_name(long_key) != ascii_name(long_key + "_x")


def test_merging_keeps_the_first_label_and_the_wider_type():
    columns = AnswerColumns()
    columns.add_form([{"key": "a", "label": "A?"}, {"key": "b", "options": [{"key": "x"}]}])
    columns.add_form([{"key": "a", "label": "Other", "options": [{"key": "y"}]}, {"key": "b"}])
    columns.add_form("not a list")
    columns.add_form([{"label": "no key"}, "not an object", {"key": ""}])
    properties = columns.properties()
    assert list(properties) == ["a", "b"]
    assert properties["a"]["type"] == properties["b"]["type"] == SEVERAL
    assert properties["a"]["description"] == "A?" and properties["b"]["description"] == "b"


@pytest.mark.parametrize("poll_forms", [True, False])
def test_discover_reads_the_forms_even_for_the_spool_only_job(make_sandbox, run_tap, tmp_path,
                                                             poll_forms):  # fmt: skip
    sb = make_sandbox(forms_per_page=1)
    spool = str(tmp_path / "spool.sqlite")
    config = tap_config(sb, poll_forms=poll_forms, webhook_spool=spool)
    assert list(declared(discover(run_tap, config))) == SANDBOX_KEYS
    assert forms_calls(sb) == 1


# Discovery that cannot read the forms.


@pytest.mark.parametrize(
    ("fault", "kind"), [("token", ErrorKind.TOKEN), ("http500", ErrorKind.TRANSIENT)]
)
def test_discover_that_cannot_read_the_forms_fails_in_one_sentence(
    make_sandbox, run_tap, fault, kind
):
    sb = make_sandbox(forms_per_page=1)
    sb.fault(path_contains="/leadgen_forms", kind=fault, times=100)
    result = run_tap(tap_config(sb, max_retries=1), extra_args=("--discover",))
    assert result.returncode == 1
    (page_id,) = sb.data.page_ids
    (error,) = error_lines(result.stderr)
    assert error.startswith(
        f"Could not read the lead forms of Page {page_id} to declare their questions in the "
        f"catalog: {ADVICE[kind]}"
    )
    assert "Traceback" not in result.stderr and not result.stdout.strip()
    assert sb.token not in result.stderr + result.stdout


def test_discover_with_graph_unreachable_fails_in_one_sentence(run_tap):
    config = {"access_token": "tok-secret-value", "page_ids": ["123"],
              "api_url": "http://127.0.0.1:9", "max_retries": 0}  # fmt: skip
    result = run_tap(config, extra_args=("--discover",))
    assert result.returncode == 1
    (error,) = error_lines(result.stderr)
    assert error.startswith("Could not read the lead forms of Page 123 to declare their")
    assert "Traceback" not in result.stderr and "tok-secret-value" not in result.stderr


def test_discover_with_a_bad_setting_is_one_sentence(run_tap):
    result = run_tap({"access_token": "tok-secret-value"}, extra_args=("--discover",))
    assert result.returncode == 1
    (error,) = error_lines(result.stderr)
    assert "page_ids is missing" in error
    assert "Traceback" not in result.stderr and "tok-secret-value" not in result.stderr


def test_a_page_without_permission_degrades_the_catalog_and_its_answers_are_kept(
    make_sandbox, run_tap
):
    sb = make_sandbox(pages=2, forms_per_page=1, leads_per_form=9)
    readable, forbidden = sb.data.page_ids
    (readable_form,) = sb.data.form_ids(readable)
    sb.add_question(readable_form, "only_readable")
    sb.fault(path_contains=f"/{forbidden}/leadgen_forms", kind="permission", times=1)
    result = run_tap(tap_config(sb), extra_args=("--discover",))
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"Cannot read the lead forms of Page {forbidden} (permission)" in result.stderr
    assert sb.token not in result.stderr
    catalog = json.loads(result.stdout)
    assert list(declared(catalog)) == [*SANDBOX_KEYS, "only_readable"]
    # A catalog that declares nothing (no Page readable) still keeps every answer.
    sb.fault(path_contains="/leadgen_forms", kind="not_found", times=2)
    empty = discover(run_tap, tap_config(sb))
    assert answers_of(empty)["properties"] == {}
    run = run_tap(tap_config(sb), catalog=empty)
    assert run.returncode == 0, run.stderr[-2000:]
    records = run.records("leads")
    assert records and all(r["answers"] == flat(r["field_data"]) for r in records)


def test_a_run_without_catalog_costs_no_extra_call_and_fails_as_before(make_sandbox, run_tap):
    """Discovery's read is the forms stream's: a Page that cannot be read still stops the run
    where it did, with the same two sentences."""
    sb = make_sandbox(forms_per_page=1)
    sb.fault(path_contains="/leadgen_forms", kind="token", times=10)
    result = run_tap(tap_config(sb))
    assert result.returncode == 1
    (page_id,) = sb.data.page_ids
    assert error_lines(result.stderr) == [
        f"Could not read the lead forms of Page {page_id}.",
        error_lines(result.stderr)[1],
    ]
    assert error_lines(result.stderr)[1].startswith(ADVICE[ErrorKind.TOKEN])
    assert forms_calls(sb) == 1
