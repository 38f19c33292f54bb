"""export_url: each form's leads read from GET /ads/lead_gen/export_csv/ of the sandbox over
real HTTP, streamed, incremental by date (the bookmark is the to_date of the last complete
export), with the login redirect Meta gives a program told in one sentence."""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import threading
import time
import urllib.parse
from collections.abc import Iterator

from tap_helpers import tap_config

from tap_fb_leads.records import rfc3339


def endpoint_config(sb, **overrides) -> dict:
    return tap_config(sb, **{"export_url": sb.url, "poll_forms": False, **overrides})


def export_calls(sb) -> list[dict]:
    return [r for r in sb.requests() if r["path"].startswith("/ads/lead_gen/export_csv")]


def _partition(state: dict) -> dict:
    [partition] = [
        p
        for p in state["bookmarks"]["leads"]["partitions"]
        if p["context"] == {"source": "export_csv"}
    ]
    return partition


def _unix(graph_time: str) -> int:
    return int(dt.datetime.fromisoformat(rfc3339(graph_time) or "").timestamp())


def test_every_form_is_exported_then_only_what_is_new(sandbox, run_tap):
    first = run_tap(endpoint_config(sandbox))
    assert first.returncode == 0, first.stderr[-2000:]
    forms = sandbox.data.form_ids()
    expected = {lead["id"]: lead for f in forms for lead in sandbox.data.leads(f)}
    assert sorted(first.ids()) == sorted(expected)
    for record in first.records("leads"):
        assert record["source"] == "export_csv"
        assert record["source_file"].startswith(f"leads_{record['form_id']}_")
        assert record["created_time"] == rfc3339(expected[record["id"]]["created_time"])
    calls = export_calls(sandbox)
    assert sorted(c["params"]["id"] for c in calls) == sorted(forms)
    # No bookmark and start_date not set: the whole history (no from_date), up to the run.
    assert all("from_date" not in c["params"] and c["params"]["type"] == "form" for c in calls)
    assert all(c["token_in_url"] is False for c in calls)
    to_dates = _partition(first.final_state)["to_date"]
    assert sorted(to_dates) == sorted(forms) and len(set(to_dates.values())) == 1
    until = next(iter(to_dates.values()))
    assert all(int(c["params"]["to_date"]) == until for c in calls)

    form = forms[0]
    added = sandbox.add_leads(form, 2, created_time=until + 1)
    # A run exports up to its own start (to_date, whole seconds): the second one starts after
    # the new leads were created, as in life (a fast first run may end in the second it began).
    while time.time() < until + 2:
        time.sleep(0.05)
    before = len(export_calls(sandbox))
    second = run_tap(endpoint_config(sandbox), state=first.final_state)
    assert second.returncode == 0, second.stderr[-2000:]
    # Only after the bookmark (minus the 10-minute lookback): the new leads, and the leads
    # of the lookback again (upserted on id).
    assert {a["id"] for a in added} <= set(second.ids())
    calls = export_calls(sandbox)[before:]
    assert len(calls) == len(forms)
    assert all(int(c["params"]["from_date"]) == until + 1 - 600 for c in calls)
    assert all(_unix(expected[i]["created_time"]) > until - 600 for i in second.ids()
               if i in expected)  # fmt: skip
    assert _partition(second.final_state)["to_date"][form] > until


def test_start_date_and_end_date_bound_the_export(sandbox, run_tap):
    form = sandbox.data.form_ids()[0]
    leads = sorted(_unix(lead["created_time"]) for lead in sandbox.data.leads(form))
    start, end = leads[10], leads[40]
    config = endpoint_config(
        sandbox,
        form_ids=[form],
        start_date=dt.datetime.fromtimestamp(start, dt.timezone.utc).isoformat(),
        end_date=dt.datetime.fromtimestamp(end, dt.timezone.utc).isoformat(),
    )
    run = run_tap(config)
    assert run.returncode == 0, run.stderr[-2000:]
    [call] = export_calls(sandbox)
    assert (int(call["params"]["from_date"]), int(call["params"]["to_date"])) == (start, end - 1)
    assert len(run.ids()) == sum(start <= t <= end - 1 for t in leads)


@contextlib.contextmanager
def www_facebook() -> Iterator[str]:
    """What www.facebook.com answers a program without a browser session: 302 to login."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", f"/login/?next={urllib.parse.quote(self.path)}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_login_redirect_is_one_sentence(sandbox, run_tap):
    with www_facebook() as url:
        run = run_tap(endpoint_config(sandbox, export_url=url))
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, run.stderr[-2000:]
    assert "answered with a redirect (a login page)" in errors[0]
    assert "set export_files" in errors[0] and "Traceback" not in run.stderr
    assert sandbox.token not in run.stderr and run.ids() == []


def test_the_export_and_the_api_give_the_same_ids(sandbox, run_tap):
    run = run_tap(tap_config(sandbox, export_url=sandbox.url))
    assert run.returncode == 0, run.stderr[-2000:]
    exported = sorted(r["id"] for r in run.records("leads") if r["source"] == "export_csv")
    polled = sorted(r["id"] for r in run.records("leads") if r["source"] == "api")
    assert exported == polled and len(polled) == 180
