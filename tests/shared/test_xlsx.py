"""fb_graph.xlsx: reading what spreadsheet programs write, writing what they read, in flat
memory; errors that never show a cell."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from fb_graph.xlsx import SharedStrings, XlsxError, read_rows, write_rows

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
STRICT = "http://purl.oclc.org/ooxml/spreadsheetml/main"
DOC_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
REL = "http://schemas.openxmlformats.org/package/2006/relationships"

ROWS = [
    ["id", "full_name", "email", "note"],
    ["l:1001", 'Zoë O\'Brien <&> "quoted"', "zoe@example.com", "  two\nlines  "],
    ["l:1002", "", "x@example.com", "after an empty cell"],
    ["l:1003", "名前", "", ""],
    ["l:1004", 'Zoë O\'Brien <&> "quoted"', "y@example.com", "tab\there"],
]


def read(path: Path) -> list[tuple[int, list[str]]]:
    with path.open("rb") as handle:
        return list(read_rows(handle))


def cells(rows: list[list[str]]) -> list[list[str]]:
    """Rows as a reader gives them: trailing empty cells dropped, empty rows left out."""
    out = []
    for row in rows:
        row = list(row)
        while row and not row[-1]:
            row.pop()
        if row:
            out.append(row)
    return out


def test_round_trip(tmp_path):
    path = tmp_path / "rows.xlsx"
    assert write_rows(path, ROWS) == len(ROWS) - 1
    assert read(path) == [(n, r) for n, r in enumerate(cells(ROWS), start=1)]


def test_openpyxl_reads_what_we_write(tmp_path):
    path = tmp_path / "rows.xlsx"
    write_rows(path, ROWS, sheet_name="Leads")
    book = load_workbook(path, read_only=True)
    assert book.sheetnames == ["Leads"]
    got = [["" if v is None else v for v in row] for row in book.worksheets[0].values]
    book.close()
    assert cells(got) == cells(ROWS)  # no <dimension>: openpyxl gives rows as long as written


@pytest.mark.parametrize("write_only", [True, False])
def test_reads_what_openpyxl_writes(tmp_path, write_only):
    path = tmp_path / "openpyxl.xlsx"
    book = Workbook(write_only=write_only)
    sheet = book.create_sheet("First") if write_only else book.active
    if not write_only:
        book.create_sheet("Second").append(["not", "this", "sheet"])
    sheet.append(["id", "amount", "organic", "text"])
    sheet.append(["l:1", 12.5, True, "a"])
    sheet.append([])
    sheet.append(["l:2", 7, False, None])
    sheet.append([None, None, None, "only the last"])
    book.save(path)
    assert read(path) == [
        (1, ["id", "amount", "organic", "text"]),
        (2, ["l:1", "12.5", "TRUE", "a"]),
        (4, ["l:2", "7", "FALSE"]),
        (5, ["", "", "", "only the last"]),
    ]


def test_sparse_cells_land_in_their_columns(tmp_path):
    path = tmp_path / "sparse.xlsx"
    book = Workbook()
    book.active["A1"] = "a"
    book.active["C1"] = "c"
    book.active["AB3"] = "far"
    book.save(path)
    assert read(path) == [(1, ["a", "", "c"]), (3, [""] * 27 + ["far"])]


def handmade(
    path: Path,
    sheet: str,
    strings: str | None = None,
    *,
    ns: str = MAIN,
    sheet_part: str = "xl/worksheets/data.xml",
    target: str | None = None,
) -> Path:
    """A workbook zipped by hand: its first sheet is ``sheet_part``, named by the
    relationship ``target`` (relative by default)."""
    rels = [
        f'<Relationship Id="rId7" Type="{DOC_REL}/worksheet" '
        f'Target="{target or sheet_part.removeprefix("xl/")}"/>'
    ]
    if strings is not None:
        rels.append(
            f'<Relationship Id="rId9" Type="{DOC_REL}/sharedStrings" Target="strings/shared.xml"/>'
        )
    with zipfile.ZipFile(path, "w") as book:
        book.writestr(
            "xl/workbook.xml",
            f'<workbook xmlns="{ns}" xmlns:r="{DOC_REL}"><sheets>'
            '<sheet name="A" sheetId="1" r:id="rId7"/></sheets></workbook>',
        )
        book.writestr(
            "xl/_rels/workbook.xml.rels",
            f'<Relationships xmlns="{REL}">{"".join(rels)}</Relationships>',
        )
        book.writestr(sheet_part, sheet)
        if strings is not None:
            book.writestr("xl/strings/shared.xml", strings)
    return path


def test_rich_text_phonetic_runs_inline_strings_and_formulas(tmp_path):
    strings = (
        f'<sst xmlns="{MAIN}"><si><t>plain</t></si>'
        '<si><r><rPr><b/></rPr><t>ri</t></r><r><t xml:space="preserve">ch </t></r>'
        '<rPh sb="0" eb="1"><t>ignored reading</t></rPh></si>'
        "<si><t>&amp;&lt;&#x41;</t></si></sst>"
    )
    sheet = (
        f'<worksheet xmlns="{MAIN}"><sheetData>'
        '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c>'
        '<c r="C1" t="s"><v>2</v></c></row>'
        '<row r="2"><c r="A2" t="inlineStr"><is><t>in</t><r><t>line</t></r></is></c>'
        '<c r="B2" t="str"><f>CONCAT("a","b")</f><v>ab</v></c>'
        '<c r="C2" t="e"><v>#N/A</v></c><c r="D2" t="d"><v>2025-09-12T15:05:13</v></c></row>'
        "</sheetData></worksheet>"
    )
    path = handmade(tmp_path / "rich.xlsx", sheet, strings)
    assert read(path) == [
        (1, ["plain", "rich ", "&<A"]),
        (2, ["inline", "ab", "#N/A", "2025-09-12T15:05:13"]),
    ]


@pytest.mark.parametrize("ns", [MAIN, STRICT])
def test_prefixed_and_strict_namespaces_rows_and_cells_without_references(tmp_path, ns):
    sheet = (
        f'<x:worksheet xmlns:x="{ns}"><x:sheetData>'
        '<x:row><x:c t="inlineStr"><x:is><x:t>a</x:t></x:is></x:c><x:c><x:v>2</x:v></x:c></x:row>'
        '<x:row><x:c t="inlineStr"><x:is><x:t>b</x:t></x:is></x:c></x:row>'
        "</x:sheetData></x:worksheet>"
    )
    path = handmade(tmp_path / "ns.xlsx", sheet, ns=ns, target="/xl/worksheets/data.xml")
    assert read(path) == [(1, ["a", "2"]), (2, ["b"])]


def refused(path: Path) -> str:
    with pytest.raises(XlsxError) as caught:
        read(path)
    return str(caught.value)


def test_damaged_workbooks_are_refused_without_their_values(tmp_path):
    secret = "secret.person@example.com"
    not_zip = tmp_path / "not.xlsx"
    not_zip.write_bytes(b"PK\x03\x04" + secret.encode() * 10)
    assert "not a zip archive" in refused(not_zip)

    other_zip = tmp_path / "doc.xlsx"
    with zipfile.ZipFile(other_zip, "w") as book:
        book.writestr("word/document.xml", f"<d>{secret}</d>")
    assert "without xl/workbook.xml" in refused(other_zip)

    broken = handmade(
        tmp_path / "broken.xlsx",
        f'<worksheet xmlns="{MAIN}"><sheetData><row r="1">'
        f'<c t="inlineStr"><is><t>{secret}</t></is></c></row><row r="2"><c>',
    )
    with pytest.raises(XlsxError) as caught, broken.open("rb") as handle:
        rows = read_rows(handle)
        assert next(rows) == (1, [secret])  # the rows before the damage come first
        next(rows)
    assert "not well-formed XML" in str(caught.value)

    index = handmade(
        tmp_path / "index.xlsx",
        f'<worksheet xmlns="{MAIN}"><sheetData><row r="1">'
        '<c r="A1" t="s"><v>5</v></c></row></sheetData></worksheet>',
        f'<sst xmlns="{MAIN}"><si><t>{secret}</t></si></sst>',
    )
    assert "shared string 5 of 1" in refused(index)

    for message in (refused(not_zip), refused(other_zip), str(caught.value), refused(index)):
        assert secret not in message


def test_a_doctype_is_refused_so_no_entity_expands(tmp_path):
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        f'<worksheet xmlns="{MAIN}"><sheetData><row r="1"><c t="inlineStr"><is><t>&lol2;</t>'
        "</is></c></row></sheetData></worksheet>"
    )
    assert "DOCTYPE" in refused(handmade(tmp_path / "bomb.xlsx", bomb))


def test_shared_strings_cross_block_boundaries(tmp_path):
    """Texts spanning the 64 KiB blocks of the spilled table, and many of them."""
    texts = [f"{i}:" + "é" * (i % 5000) for i in range(600)]
    strings = f'<sst xmlns="{MAIN}">' + "".join(f"<si><t>{t}</t></si>" for t in texts) + "</sst>"
    path = handmade(tmp_path / "blocks.xlsx", f'<worksheet xmlns="{MAIN}"/>', strings)
    with zipfile.ZipFile(path) as book, SharedStrings() as table:
        table.load(book, "xl/strings/shared.xml")
        assert table.count == len(texts)
        assert [table[i] for i in reversed(range(len(texts)))] == texts[::-1]


MEMORY = """
import resource, sys
from fb_graph.xlsx import read_rows, write_rows
rows, path = int(sys.argv[1]), sys.argv[2]
header = [["id", "email", "phone", "name"]]
body = ([f"l:{i}", f"person{i}@example.com", f"+1650555{i:07d}", f"Person {i} Ünïcode"]
        for i in range(rows))
write_rows(path, (row for part in (header, body) for row in part))
with open(path, "rb") as handle:
    read = sum(1 for _ in read_rows(handle))
print(read, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def test_memory_stays_flat_for_ten_times_the_rows(tmp_path):
    """Every text distinct: 800,000 shared strings held in memory would take 60+ MiB."""
    runs = {
        rows: subprocess.Popen(
            [sys.executable, "-c", MEMORY, str(rows), str(tmp_path / f"{rows}.xlsx")],
            stdout=subprocess.PIPE,
            text=True,
        )
        for rows in (20_000, 200_000)
    }
    peaks = {}
    for rows, proc in runs.items():
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0
        count, peak = out.split()
        assert int(count) == rows + 1
        peaks[rows] = float(peak)
    with zipfile.ZipFile(tmp_path / "200000.xlsx") as book:
        assert book.getinfo("xl/sharedStrings.xml").file_size > 800_000 * 30
    assert peaks[200_000] - peaks[20_000] < 4, peaks
