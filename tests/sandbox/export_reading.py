"""Reading lead export files back the way a careful reader must, for the export tests.

Detect the BOM (UTF-16 LE/BE, UTF-8) and the delimiter, or open an XLSX; strip the type
prefixes; convert ``created_time`` to UTC. ``expected_rows`` is what the sandbox's Graph API
serves for the same leads, in the same shape.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

from fb_graph.export_format import TEST_ANSWER
from fb_graph.fields import AD_FIELDS
from fb_graph_sandbox.data import SandboxData

BOMS = (
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
    (b"\xef\xbb\xbf", "utf-8"),
)
PREFIXES = ("l:", "ag:", "as:", "c:", "f:", "p:", "z:")
TRUTH = {"1": True, "0": False, "TRUE": True, "FALSE": False, "true": True, "false": False}


def sniff_text(raw: bytes) -> tuple[str, bool, str]:
    """(encoding, had a BOM, decoded text without the BOM)."""
    for bom, encoding in BOMS:
        if raw.startswith(bom):
            return encoding, True, raw[len(bom) :].decode(encoding)
    return "utf-8", False, raw.decode("utf-8")


def read_table(path: Path) -> list[list[str]]:
    """Every row (header first) of a text or XLSX export file."""
    if path.suffix == ".xlsx":
        from openpyxl import load_workbook

        book = load_workbook(path, read_only=True)
        rows = [["" if v is None else str(v) for v in row] for row in book.active.values]
        book.close()
        return rows
    _, _, text = sniff_text(path.read_bytes())
    first = text.split("\n", 1)[0]
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def records(rows: list[list[str]]) -> list[dict[str, str]]:
    header, *body = rows
    return [dict(zip(header, row, strict=True)) for row in body]


def unprefix(value: str) -> str:
    for prefix in PREFIXES:
        if value.startswith(prefix):
            return value[len(prefix) :]
    return value


def utc(iso: str) -> str:
    """``2025-09-12T15:05:13+05:30`` -> Graph's ``2025-09-12T09:35:13+0000``."""
    moment = datetime.fromisoformat(iso).astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S+0000")


def normalized(record: dict[str, str]) -> dict[str, object]:
    """A row as the Graph API would say it: no prefixes, UTC time, is_organic a bool."""
    out: dict[str, object] = {k: unprefix(v) for k, v in record.items()}
    out["created_time"] = utc(record["created_time"])
    out["is_organic"] = TRUTH[record["is_organic"]]
    out.pop("lead_status", None)
    return out


def expected_rows(
    data: SandboxData, form_ids: Iterable[str] | None = None, with_ads: bool = True
) -> list[dict[str, object]]:
    """The leads the Graph API serves (``data.leads``), shaped like :func:`normalized` rows."""
    out = []
    questions = [q["key"] for q in data.forms(data.page_ids[0])[0]["questions"]]
    for form_id in form_ids or data.form_ids():
        form = data.form_by_id[form_id]
        tests = {lead["id"] for lead in data.test_leads(form)}
        for lead in data.leads(form_id):
            answers = {a["name"]: ",".join(a["values"]) for a in lead["field_data"]}
            row: dict[str, object] = {
                "id": lead["id"],
                "created_time": lead["created_time"],
                **{name: (lead.get(name, "") if with_ads else "") for name in AD_FIELDS},
                "form_id": form_id,
                "form_name": form.name,
                "is_organic": lead["is_organic"],
                "platform": lead["platform"],
            }
            for key in questions:
                row[key] = TEST_ANSWER if lead["id"] in tests else answers.get(key, "")
            out.append(row)
    return out
