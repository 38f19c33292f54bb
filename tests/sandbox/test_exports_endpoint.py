"""``GET /ads/lead_gen/export_csv/``: token in the header or a login redirect, Meta's date
rules, a UTF-8 TSV streamed in chunks, errors."""

from __future__ import annotations

import calendar
import csv
import io
import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from export_reading import expected_rows, normalized, records

from fb_graph_sandbox import EXPIRED_TOKEN

NOW = 1_760_000_000
PATH = "/ads/lead_gen/export_csv/"


SANDBOX_TOKEN = object()


def export(sb, token: object = SANDBOX_TOKEN, **params) -> requests.Response:
    token = sb.token if token is SANDBOX_TOKEN else token
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(
        sb.url + PATH, params=params, headers=headers, timeout=30, allow_redirects=False
    )


def form_export(sb, form: str, **params) -> requests.Response:
    return export(sb, id=form, type="form", **params)


def table(response: requests.Response) -> list[dict[str, str]]:
    assert not response.content.startswith((b"\xef\xbb\xbf", b"\xff\xfe"))
    text = response.content.decode("utf-8")
    return records(list(csv.reader(io.StringIO(text, newline=""), delimiter="\t")))


def window(response: requests.Response) -> tuple[int, int]:
    """(from, to) the sandbox used, from the file name it gives."""
    found = re.search(r"leads_\d+_(\d+)_(\d+)\.csv", response.headers["Content-Disposition"])
    assert found is not None
    return int(found.group(1)), int(found.group(2))


@pytest.fixture
def sb(make_sandbox):
    return make_sandbox(now=NOW)


def stamps(sb, form: str) -> list[int]:
    return [
        calendar.timegm(time.strptime(r["created_time"], "%Y-%m-%dT%H:%M:%S+0000"))
        for r in expected_rows(sb.data, [form])
    ]


# -- answer ------------------------------------------------------------------------------
def test_whole_form_as_utf8_tsv_streamed(sb):
    form = sb.data.form_ids()[0]
    response = form_export(sb, form)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/tab-separated-values")
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in response.headers
    rows = table(response)
    assert {r["is_organic"] for r in rows} == {"0", "1"}
    assert [normalized(r) for r in rows] == expected_rows(sb.data, [form])


def test_a_large_form_comes_in_many_chunks(make_sandbox):
    sb = make_sandbox(leads_per_form=3000, forms_per_page=1)
    form = sb.data.form_ids()[0]
    with requests.get(
        sb.url + PATH,
        params={"id": form, "type": "form"},
        headers={"Authorization": f"Bearer {sb.token}"},
        stream=True,
        timeout=30,
    ) as response:
        assert response.headers["Transfer-Encoding"] == "chunked"
        pieces = list(response.raw.read_chunked(decode_content=False))
    assert len(pieces) > 5
    body = b"".join(pieces).decode()
    assert body.count("\r\n") == 3001


def test_token_never_in_the_log_and_added_leads_count(sb):
    form = sb.data.form_ids()[0]
    added = sb.add_leads(form, 2)
    rows = table(form_export(sb, form))
    assert {r["id"][2:] for r in rows[-2:]} == {lead["id"] for lead in added}
    log = sb.requests()[-1]
    assert log["path"] == PATH and log["status"] == 200
    assert log["params"] == {"id": form, "type": "form"}
    assert sb.token not in str(sb.requests())


def test_a_token_without_ads_management_gets_no_ad_columns(make_sandbox):
    token = "EAAnoAds"
    sb = make_sandbox(now=NOW, tokens={token: frozenset({"leads_retrieval"})})
    form = sb.data.form_ids()[0]
    rows = table(export(sb, token, id=form, type="form"))
    assert {r["ad_id"] for r in rows} == {""}
    assert [normalized(r) for r in rows] == expected_rows(sb.data, [form], with_ads=False)


# -- date rules --------------------------------------------------------------------------
def test_no_from_date_means_the_forms_creation_and_no_to_date_now(sb):
    form = sb.data.form_by_id[sb.data.form_ids()[0]]
    before = int(time.time())
    response = form_export(sb, form.id)
    since, until = window(response)
    assert since == form.created
    assert before <= until <= int(time.time())  # now: the wall clock (later than NOW here)
    assert len(table(response)) == 60


def test_too_early_from_date_is_the_forms_creation(sb):
    form = sb.data.form_by_id[sb.data.form_ids()[0]]
    response = form_export(sb, form.id, from_date=form.created - 10 * 86400)
    assert window(response)[0] == form.created and len(table(response)) == 60


def test_later_from_date_cuts_older_leads(sb):
    form = sb.data.form_ids()[0]
    times = stamps(sb, form)
    response = form_export(sb, form, from_date=times[30])
    assert window(response)[0] == times[30]
    expected = expected_rows(sb.data, [form])
    wanted = [r for r, t in zip(expected, times, strict=True) if t >= times[30]]
    assert [normalized(r) for r in table(response)] == wanted and len(wanted) >= 30


def test_future_to_date_is_now(sb):
    form = sb.data.form_ids()[0]
    response = form_export(sb, form, to_date=int(time.time()) + 10 * 86400)
    assert window(response)[1] <= int(time.time()) and len(table(response)) == 60


def test_past_to_date_cuts_newer_leads(sb):
    form = sb.data.form_ids()[0]
    times = stamps(sb, form)
    response = form_export(sb, form, from_date=times[5], to_date=times[40])
    assert window(response) == (times[5], times[40])
    wanted = [
        r
        for r, t in zip(expected_rows(sb.data, [form]), times, strict=True)
        if times[5] <= t <= times[40]
    ]
    assert [normalized(r) for r in table(response)] == wanted


def test_from_after_to_is_just_the_header(sb):
    form = sb.data.form_ids()[0]
    response = form_export(sb, form, from_date=NOW, to_date=NOW - 86400)
    assert response.status_code == 200 and table(response) == []
    assert response.text.startswith("id\tcreated_time\t")


def test_a_date_that_is_not_unix_seconds_is_an_error(sb):
    response = form_export(sb, sb.data.form_ids()[0], from_date="2025-10-01")
    assert response.status_code == 400 and response.json()["error"]["code"] == 100


# -- no session, errors --------------------------------------------------------------------
@pytest.mark.parametrize("token", [None, "EAAunknown", EXPIRED_TOKEN])
def test_no_valid_token_redirects_to_login(sb, token):
    form = sb.data.form_ids()[0]
    response = export(sb, token, id=form, type="form", from_date=NOW - 86400)
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/login/"
    target = parse_qs(location.query)["next"][0]
    assert target.startswith(sb.url + PATH) and f"id={form}" in target
    assert sb.requests()[-1]["status"] == 302


def test_a_token_in_the_url_is_not_a_session(sb):
    response = requests.get(
        sb.url + PATH,
        params={"id": sb.data.form_ids()[0], "type": "form", "access_token": sb.token},
        timeout=30,
        allow_redirects=False,
    )
    assert response.status_code == 302
    assert sb.token not in str(sb.requests())


@pytest.mark.parametrize(
    ("params", "code", "subcode"),
    [
        ({"id": "123456789012345", "type": "form"}, 100, 33),
        ({"type": "form"}, 100, None),
        ({"id": "FORM", "type": "ad"}, 100, None),
        ({"id": "FORM"}, 100, None),
    ],
)
def test_bad_requests_get_metas_envelope(sb, params, code, subcode):
    params = {k: sb.data.form_ids()[0] if v == "FORM" else v for k, v in params.items()}
    response = export(sb, **params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == code and error.get("error_subcode") == subcode


def test_permission_and_leads_access(make_sandbox):
    sb = make_sandbox(tokens={"EAAnoLeads": frozenset({"pages_manage_ads"})})
    form = sb.data.form_ids()[0]
    response = export(sb, "EAAnoLeads", id=form, type="form")
    assert response.status_code == 400 and response.json()["error"]["code"] == 200
    full = make_sandbox()
    full.leads_access(full.data.page_ids[0], False)
    denied = export(full, id=full.data.form_ids()[0], type="form")
    assert denied.status_code == 400 and denied.json()["error"]["error_subcode"] == 33
