"""`meltano config test target-fb-conversions`: Meltano's test stream gets one harmless call
that fails for a wrong token or destination, and no event is sent."""

from __future__ import annotations

import json

import pytest
from target_helpers import one_line_error, run_target, write_config

from fb_graph.errors import ADVICE, ErrorKind
from fb_graph_sandbox import DEFAULT_DATASET_ID, DEFAULT_OFFLINE_EVENT_SET_ID

WRONG_TOKEN = "EAAwrongtoken1234567890"


def meltano_test_messages() -> str:
    """What Meltano's LoaderTestService sends a loader (meltano/core/plugin_test_service.py)."""
    schema = {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
        },
    }
    lines = [{"type": "SCHEMA", "stream": "meltano_test_stream", "schema": schema,
              "key_properties": ["id"]}]  # fmt: skip
    lines += [
        {"type": "RECORD", "stream": "meltano_test_stream",
         "record": {"id": i, "name": f"test_record_{i}", "created_at": "2025-01-01T00:00:00Z"}}
        for i in (1, 2, 3)
    ]  # fmt: skip
    lines.append({"type": "STATE", "value": {"bookmarks": {"meltano_test_stream": {"id": 3}}}})
    return "".join(json.dumps(line) + "\n" for line in lines)


@pytest.mark.parametrize(
    ("api", "destination", "what"),
    [("conversions_api", DEFAULT_DATASET_ID, "dataset"),
     ("offline_conversions", DEFAULT_OFFLINE_EVENT_SET_ID, "offline event set")],
)  # fmt: skip
def test_a_good_token_passes_with_one_read_and_no_event(make_sandbox, tmp_path, api, destination,
                                                        what):  # fmt: skip
    sb = make_sandbox(leads_per_form=1)
    config = write_config(tmp_path, sb, api=api, ledger=str(tmp_path / "ledger.sqlite"))
    result = run_target(config, meltano_test_messages())
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"Connection test: the token reaches {what} {destination}" in result.stderr
    calls = sb.requests()
    assert [(c["method"], c["path"].rsplit("/", 1)[-1]) for c in calls] == [("GET", destination)]
    assert sb.events() == []
    assert not (tmp_path / "rejects.jsonl").exists()


def test_a_wrong_token_fails_in_one_sentence(make_sandbox, tmp_path):
    sb = make_sandbox(leads_per_form=1)
    result = run_target(
        write_config(tmp_path, sb, access_token=WRONG_TOKEN), meltano_test_messages()
    )
    assert result.returncode == 1
    errors = one_line_error(result.stderr)
    assert ADVICE[ErrorKind.TOKEN] in errors[-1]
    assert WRONG_TOKEN not in result.stderr + result.stdout
    assert result.stdout.strip() == ""  # no STATE: nothing was checked


def test_an_unknown_dataset_fails_in_one_sentence(make_sandbox, tmp_path):
    sb = make_sandbox(leads_per_form=1)
    result = run_target(
        write_config(tmp_path, sb, dataset_id="1234567890"), meltano_test_messages()
    )
    assert result.returncode == 1
    errors = one_line_error(result.stderr)
    assert "1234567890" in errors[-1]
    assert sb.events() == []


def test_the_check_connection_flag_reads_no_input(make_sandbox, tmp_path):
    sb = make_sandbox(leads_per_form=1)
    good = run_target(write_config(tmp_path, sb), "", "--check-connection")
    assert good.returncode == 0, good.stderr[-2000:]
    assert f"Connection test: the token reaches dataset {DEFAULT_DATASET_ID}" in good.stderr
    config = write_config(tmp_path, sb, access_token=WRONG_TOKEN)
    wrong = run_target(config, "", "--check-connection")
    assert wrong.returncode == 1
    assert ADVICE[ErrorKind.TOKEN] in one_line_error(wrong.stderr)[-1]
    assert sb.events() == []
