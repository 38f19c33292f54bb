"""Lead export files and the API in one `meltano run`: one row per lead in Postgres."""

from __future__ import annotations

import json
import re

import pytest
from loop_expect import assert_warehouse_matches_sandbox

pytestmark = pytest.mark.pipeline


def test_an_export_file_and_the_api_overlapping_give_one_row_per_lead(loop, tmp_path):
    export = tmp_path / "leads-export.csv"
    loop.sandbox.export(export, "utf16", utc_offset="+05:30")  # every lead the API serves
    files = {"TAP_FB_LEADS_EXPORT_FILES": json.dumps([str(export)])}

    first = loop.meltano("run", "leads-to-warehouse", extra_env=files)
    emitted = re.search(
        r"Export file \S*leads-export\.csv \(utf-16-le with BOM, tabs\): "
        r"(\d+) leads emitted",
        first.stderr,
    )
    assert emitted, "the file was not read as UTF-16 with tabs"
    # The file's rows and the API's are the same leads (ids without the file's "l:" prefix,
    # times from +05:30 to UTC): one row each, equal to what the API serves.
    expected = assert_warehouse_matches_sandbox(loop)
    assert int(emitted.group(1)) == len(expected)  # every lead of the file, as many as the API
    sources = dict(loop.query("SELECT source, count(*) FROM fb_leads.leads GROUP BY source"))
    assert sources == {"api": len(expected)}  # within a run the API's version comes last

    # The file is read once: the next run reads nothing from it, and still one row per lead.
    second = loop.meltano("run", "leads-to-warehouse", extra_env=files)
    assert "read before (same sha256): not read again" in second.stderr
    assert_warehouse_matches_sandbox(loop)
