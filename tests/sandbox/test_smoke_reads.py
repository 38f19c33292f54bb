"""First checks of the sandbox's reads over real HTTP (more in the other test modules)."""

from __future__ import annotations

import json
import subprocess
import sys

import requests

from fb_graph.sandbox.data import LEAD_FIELDS


def _get(sb, path, **params):
    return requests.get(
        f"{sb.url}/v26.0/{path}",
        headers={"Authorization": f"Bearer {sb.token}"},
        params=params,
        timeout=10,
    )


def test_forms_then_every_lead_once(sandbox):
    page = sandbox.data.page_ids[0]
    forms = _get(sandbox, f"{page}/leadgen_forms", fields="id,status").json()["data"]
    assert [f["id"] for f in forms] == sandbox.data.form_ids(page)
    form = forms[0]["id"]
    ids: list[str] = []
    after = None
    while True:
        params = {"limit": 7, "fields": ",".join(LEAD_FIELDS)}
        if after:
            params["after"] = after
        body = _get(sandbox, f"{form}/leads", **params).json()
        ids += [lead["id"] for lead in body["data"]]
        if "next" not in body["paging"]:
            break
        after = body["paging"]["cursors"]["after"]
    expected = {lead["id"] for lead in sandbox.data.leads(form)}
    assert len(ids) == len(set(ids)) == sandbox.data.lead_count(form) == 60
    assert set(ids) == expected


def test_cli_prints_ready_line_and_serves():
    proc = subprocess.Popen(
        [sys.executable, "-m", "fb_graph.sandbox.cli", "--port", "0", "--leads-per-form", "5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        ready = json.loads(proc.stdout.readline())
        page = ready["page_ids"][0]
        r = requests.get(
            f"{ready['url']}/v26.0/{page}/leadgen_forms",
            headers={"Authorization": f"Bearer {ready['token']}"},
            timeout=10,
        )
        assert r.status_code == 200
        assert len(r.json()["data"]) == 3
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
