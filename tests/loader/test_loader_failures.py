"""Bad input and bad config: exit 1 and one sentence on stderr, without a traceback or any
record value; what was committed before (records and their STATE) stays."""

from __future__ import annotations

import json
import subprocess

import pytest
from loader_helpers import EMAIL, PHONE, TARGET, Warehouse, record, schema, state

PERSON = {
    "id": {"type": "string"},
    "email": {"type": ["string", "null"]},
    "phone": {"type": ["string", "null"]},
    "count": {"type": ["integer", "null"]},
}
# Two records (one batch with batch_size_rows 2) and their state: committed before the bad line.
COMMITTED = [
    schema("leads", PERSON),
    record("leads", {"id": "1", "email": EMAIL, "phone": PHONE, "count": 1}),
    record("leads", {"id": "2", "email": EMAIL, "phone": PHONE, "count": 2}),
    state(1),
]
BAD_LINES = {
    "not JSON": (f"{EMAIL} {PHONE}", "line 5 of the input is not JSON"),
    "a cut RECORD line": (
        f'{{"type":"RECORD","stream":"leads","record":{{"id":"3","email":"{EMAIL}","phone":"',
        "line 5 of the input is not JSON",
    ),
    "a record before its schema": (
        record("forms", {"id": "f", "email": EMAIL, "phone": PHONE}),
        "line 5: a record of stream 'forms'",
    ),
    "a null key": (record("leads", {"id": None, "email": EMAIL, "phone": PHONE}), "for 'id'"),
    # PostgreSQL's own message would quote the value.
    "text for an integer": (
        record("leads", {"id": "3", "email": EMAIL, "phone": PHONE, "count": EMAIL}),
        "stream 'leads': PostgreSQL refused a batch",
    ),
    "a BATCH message": (
        json.dumps({"type": "BATCH", "stream": "leads", "manifest": [f"file:///{EMAIL}.jsonl"]}),
        "line 5: BATCH",
    ),
}


@pytest.mark.parametrize("case", list(BAD_LINES))
def test_bad_input_is_one_sentence_and_keeps_what_was_committed(
    warehouse: Warehouse, case: str
) -> None:
    bad, mention = BAD_LINES[case]
    after = [record("leads", {"id": "4", "email": EMAIL, "phone": PHONE}), state(2)]
    result = warehouse.run([*COMMITTED, bad, *after], batch_size_rows=2)
    result.assert_one_sentence_failure(mention)
    assert result.states == [1]
    assert [row["id"] for row in warehouse.rows("leads")] == ["1", "2"]


def test_missing_host(warehouse: Warehouse) -> None:
    config = warehouse.config()
    del config["host"]
    sentence = warehouse.run([], config=config).assert_one_sentence_failure("host is missing")
    assert "user is missing" not in sentence


def test_a_port_that_is_not_a_whole_number(warehouse: Warehouse) -> None:
    warehouse.run([], port="fifty").assert_one_sentence_failure("port")
    warehouse.run([], port=5432.5).assert_one_sentence_failure("port")


def test_a_wrong_password_is_not_repeated(warehouse: Warehouse) -> None:
    wrong = "Wr0ng-Pa55word-xyz"
    result = warehouse.run(COMMITTED, password=wrong)
    sentence = result.assert_one_sentence_failure("cannot connect", "password")
    assert wrong not in result.stderr + result.stdout
    assert "password authentication failed" in sentence
    assert result.stdout == ""


def test_a_sqlalchemy_url_instead_of_host_and_the_rest(warehouse: Warehouse) -> None:
    """target-postgres' sqlalchemy_url, its driver part included, reaches the same database;
    a wrong password in it is not repeated."""
    s = warehouse.settings
    url = f"postgresql+psycopg://{s.user}:{s.password}@{s.host}:{s.port}/{warehouse.database}"
    done = warehouse.run(COMMITTED, config={"sqlalchemy_url": url})
    assert done.returncode == 0, done.stderr
    assert warehouse.rows("leads")
    wrong = url.replace(f":{s.password}@", ":Wr0ng-Pa55word-xyz@")
    result = warehouse.run(COMMITTED, config={"sqlalchemy_url": wrong})
    result.assert_one_sentence_failure("cannot connect")
    assert "Wr0ng-Pa55word-xyz" not in result.stderr + result.stdout
    warehouse.run([], config={"sqlalchemy_url": "mysql://x@y/z"}).assert_one_sentence_failure(
        "sqlalchemy_url"
    )


def test_an_ssh_tunnel_is_refused(warehouse: Warehouse) -> None:
    config = warehouse.config(ssh_tunnel={"enable": True, "host": "bastion"})
    warehouse.run([], config=config).assert_one_sentence_failure("ssh_tunnel")


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", ""])
def test_a_config_file_that_is_not_a_json_object(warehouse: Warehouse, text: str) -> None:
    warehouse.run(COMMITTED, config=text).assert_one_sentence_failure("config file")


def test_about_prints_json() -> None:
    done = subprocess.run(
        [TARGET, "--about"], capture_output=True, text=True, timeout=60, check=True
    )
    about = json.loads(done.stdout)
    assert about["name"] == "target-fb-leads-postgres"
    assert {"host", "port", "user", "password", "database", "load_method"} <= set(about["settings"])
