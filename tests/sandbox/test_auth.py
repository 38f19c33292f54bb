"""Auth: header or parameter, bad/expired tokens, permissions, hidden objects, appsecret_proof.

Each error is parsed and classified by the shared code (fb_graph.errors), as the plugins do.
"""

from __future__ import annotations

import json

import pytest
import requests
from sandbox_client import Graph, error_of

from fb_graph.auth import appsecret_proof
from fb_graph.errors import ErrorKind
from fb_graph_sandbox import ALL_PERMISSIONS, EXPIRED_TOKEN


def test_bearer_header_works_and_token_never_reaches_the_log(graph, sandbox):
    form = sandbox.data.form_ids()[0]
    assert graph.get(f"{form}/leads").status_code == 200
    entry = sandbox.requests()[-1]
    assert entry["token_in_url"] is False
    assert sandbox.token not in json.dumps(sandbox.requests())


def test_access_token_parameter_works_and_is_flagged(sandbox):
    form = sandbox.data.form_ids()[0]
    answer = requests.get(
        f"{sandbox.url}/v26.0/{form}/leads", params={"access_token": sandbox.token}, timeout=10
    )
    assert answer.status_code == 200
    entry = sandbox.requests()[-1]
    assert entry["token_in_url"] is True
    assert "access_token" not in entry["params"]
    assert sandbox.token not in json.dumps(sandbox.requests())


def test_unversioned_path_is_served(sandbox):
    form = sandbox.data.form_ids()[0]
    answer = requests.get(
        f"{sandbox.url}/{form}/leads",
        headers={"Authorization": f"Bearer {sandbox.token}"},
        timeout=10,
    )
    assert answer.status_code == 200


def test_missing_token(sandbox):
    form = sandbox.data.form_ids()[0]
    error = error_of(Graph(sandbox, token="").get(f"{form}/leads"))
    assert error.kind is ErrorKind.TOKEN
    assert "access token is required" in error.message


def test_bad_token_is_190_cannot_parse(sandbox):
    form = sandbox.data.form_ids()[0]
    answer = Graph(sandbox, token="EAAnotatoken").get(f"{form}/leads")
    assert answer.status_code == 400
    error = error_of(answer)
    assert (error.code, error.kind) == (190, ErrorKind.TOKEN)
    assert error.message == "Invalid OAuth access token - Cannot parse access token"
    assert "long-lived Page token" in str(error)


def test_expired_token_is_190_463(sandbox):
    page = sandbox.data.page_ids[0]
    error = error_of(Graph(sandbox, token=EXPIRED_TOKEN).get(f"{page}/leadgen_forms"))
    assert (error.code, error.subcode, error.kind) == (190, 463, ErrorKind.TOKEN)


@pytest.mark.parametrize(
    ("missing", "path_of"),
    [
        ("leads_retrieval", lambda sb: f"{sb.data.form_ids()[0]}/leads"),
        ("pages_manage_ads", lambda sb: f"{sb.data.page_ids[0]}/leadgen_forms"),
        ("leads_retrieval", lambda sb: next(iter(sb.data.leads(sb.data.form_ids()[0])))["id"]),
    ],
)
def test_missing_permission_is_200_naming_it(make_sandbox, missing, path_of):
    sb = make_sandbox(tokens={"weak": ALL_PERMISSIONS - {missing}})
    answer = Graph(sb, token="weak").get(path_of(sb))
    error = error_of(answer)
    assert (error.code, error.kind) == (200, ErrorKind.PERMISSION)
    assert error.message.startswith("(#200)") and missing in error.message


@pytest.mark.parametrize("object_id", ["123456789012345", "2999999999999999", "abc"])
def test_unknown_object_is_100_33(graph, object_id):
    answer = graph.get(f"{object_id}/leads")
    error = error_of(answer)
    assert (error.code, error.subcode, error.kind) == (100, 33, ErrorKind.NOT_FOUND)
    assert f"Object with ID '{object_id}' does not exist" in error.message


def test_unknown_lead_id_is_100_33(graph, sandbox):
    answer = graph.get("2000000000000001")
    assert error_of(answer).kind is ErrorKind.NOT_FOUND


def test_unknown_edge_is_a_nonexisting_field(graph, sandbox):
    form = sandbox.data.form_ids()[0]
    error = error_of(graph.get(f"{form}/subscribers"))
    assert error.code == 100 and "(subscribers)" in error.message


def test_appsecret_proof_required_when_the_app_has_a_secret(make_sandbox):
    sb = make_sandbox(app_secret="s3cr3t")
    form = sb.data.form_ids()[0]
    graph = Graph(sb)
    missing = error_of(graph.get(f"{form}/leads"))
    assert missing.code == 100 and "appsecret_proof" in missing.message
    wrong = error_of(graph.get(f"{form}/leads", appsecret_proof="0" * 64))
    assert wrong.message == "Invalid appsecret_proof provided in the API argument"
    good = graph.get(f"{form}/leads", appsecret_proof=appsecret_proof(sb.token, "s3cr3t"))
    assert good.status_code == 200
    # The next URL keeps the proof (it is an HMAC, safe in a URL).
    assert "appsecret_proof=" in good.json()["paging"]["next"]


def test_appsecret_proof_for_another_token_is_rejected(make_sandbox):
    sb = make_sandbox(app_secret="s3cr3t", tokens={"a": ALL_PERMISSIONS, "b": ALL_PERMISSIONS})
    form = sb.data.form_ids()[0]
    proof_of_b = appsecret_proof("b", "s3cr3t")
    answer = Graph(sb, token="a").get(f"{form}/leads", appsecret_proof=proof_of_b)
    assert error_of(answer).message == "Invalid appsecret_proof provided in the API argument"


def test_every_answer_carries_usage_headers(graph, sandbox):
    form = sandbox.data.form_ids()[0]
    for answer in (graph.get(f"{form}/leads"), graph.get("nope/leads")):
        assert "X-App-Usage" in answer.headers
        assert "X-Business-Use-Case-Usage" in answer.headers
