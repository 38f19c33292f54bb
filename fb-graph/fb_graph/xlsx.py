"""XLSX workbooks as rows of strings, read and written as streams (memory flat in rows).

Reading (:func:`read_rows`, the tap's lead export files): the first worksheet, its cells as
text, whatever wrote the workbook (Excel, Google Sheets, LibreOffice, openpyxl, Meta):

- the sheet's XML is parsed as it is decompressed, and each row is dropped once yielded;
- the shared strings table (every distinct text of the workbook: a million-row export holds
  millions of them) is spilled to an unnamed temporary file with an index of offsets, and read
  back through a small cache of blocks. Nothing in memory grows with the number of strings.
- cells: shared strings (``t="s"``), inline strings (``inlineStr``, rich text joined, phonetic
  runs left out), formula results (``str``), booleans as ``TRUE``/``FALSE``, numbers, dates
  and errors as the XML holds them (``2.27611E+15`` stays that: a reader can tell a lost id);
  a missing cell is ``""``. Rows are numbered as in the sheet (``r``), as a spreadsheet shows.

Writing (:func:`write_rows`, the sandbox's export files): one sheet, every cell a shared
string, as Excel writes them (so readers exercise the shared strings path); the strings are
spilled to a temporary file while the sheet is written, then copied into the workbook.

Errors are :class:`XlsxError`, whose message never holds a cell's value.
"""

from __future__ import annotations

import functools
import os
import posixpath
import struct
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO
from xml.parsers import expat
from xml.sax.saxutils import escape

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
STRICT_NS = "http://purl.oclc.org/ooxml/spreadsheetml/main"
_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_DOC_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_STRICT_DOC_REL = "http://purl.oclc.org/ooxml/officeDocument/relationships"
WORKBOOK = "xl/workbook.xml"
_CHUNK = 1 << 16
_BLOCK_BITS = 16
_BLOCK = 1 << _BLOCK_BITS
_OFFSET = struct.Struct("<Q")
_PAIR = struct.Struct("<QQ")


class XlsxError(ValueError):
    """A workbook that cannot be read; the message says why without any cell's value."""


# -- reading ---------------------------------------------------------------------------------
def read_rows(handle: IO[bytes]) -> Iterator[tuple[int, list[str]]]:
    """``(row number, cells)`` of the first worksheet of the workbook in ``handle`` (seekable),
    rows without any text left out. :class:`XlsxError` when it is not a readable workbook."""
    try:
        book = zipfile.ZipFile(handle)
    except (zipfile.BadZipFile, OSError) as exc:
        raise XlsxError(f"it is not a zip archive ({type(exc).__name__})") from None
    with book:
        sheet, strings_part = _parts(book)
        with SharedStrings() as strings:
            if strings_part is not None:
                strings.load(book, strings_part)
            yield from _SheetReader(strings).rows(book, sheet)


def _names(local: str) -> frozenset[str]:
    """An element's expanded names in both SpreadsheetML namespaces (transitional, strict)."""
    return frozenset((f"{MAIN_NS}}}{local}", f"{STRICT_NS}}}{local}"))


_SHEET, _RELATIONSHIP = _names("sheet"), frozenset((f"{_REL_NS}}}Relationship",))
_ROW, _C, _V, _T, _SI, _RPH = (_names(n) for n in ("row", "c", "v", "t", "si", "rPh"))
_SHEET_ID = (f"{_DOC_REL}}}id", f"{_STRICT_DOC_REL}}}id")


def _parts(book: zipfile.ZipFile) -> tuple[str, str | None]:
    """The first worksheet's part and the shared strings part (if any), from the workbook's
    relationships."""
    names = set(book.namelist())
    if WORKBOOK not in names:
        raise XlsxError("it is a zip archive without xl/workbook.xml, not an XLSX workbook")
    sheets = _elements(book, WORKBOOK, _SHEET)
    first = next((s[k] for s in sheets[:1] for k in _SHEET_ID if k in s), "")
    targets: dict[str, str] = {}
    strings_part = None
    rels = "xl/_rels/workbook.xml.rels"
    for relation in _elements(book, rels, _RELATIONSHIP) if rels in names else []:
        target = _part_path(relation.get("Target", ""))
        targets[relation.get("Id", "")] = target
        if relation.get("Type", "").endswith("/sharedStrings"):
            strings_part = target
    sheet = targets.get(first, "xl/worksheets/sheet1.xml")
    if sheet not in names:
        raise XlsxError("its first worksheet is missing from the archive")
    if strings_part not in names:
        strings_part = "xl/sharedStrings.xml" if "xl/sharedStrings.xml" in names else None
    return sheet, strings_part


def _part_path(target: str) -> str:
    """A relationship target of the workbook part as a path in the archive."""
    if target.startswith("/"):
        return target[1:]
    return posixpath.normpath(posixpath.join("xl", target))


def _elements(book: zipfile.ZipFile, part: str, wanted: frozenset[str]) -> list[dict[str, str]]:
    """The attributes of every element of a small part with one of the ``wanted`` names."""
    found: list[dict[str, str]] = []

    def start(name: str, attributes: dict[str, str]) -> None:
        if name in wanted:
            found.append(attributes)

    for _ in _parse(book, part, start, None, None):
        pass
    return found


def _parse(
    book: zipfile.ZipFile,
    part: str,
    start: Callable[[str, dict[str, str]], None] | None,
    end: Callable[[str], None] | None,
    text: Callable[[str], None] | None,
) -> Iterator[None]:
    """Parse one part with expat as it is decompressed (names as ``namespace}local``),
    yielding after each chunk. A DOCTYPE is refused: no OOXML part has one, and refusing it
    keeps entity expansion out."""
    parser = expat.ParserCreate(namespace_separator="}")
    parser.buffer_text = True
    parser.buffer_size = _CHUNK
    parser.StartDoctypeDeclHandler = _no_doctype
    if start is not None:
        parser.StartElementHandler = start
    if end is not None:
        parser.EndElementHandler = end
    if text is not None:
        parser.CharacterDataHandler = text
    try:
        with book.open(part) as stream:
            while chunk := stream.read(_CHUNK):
                parser.Parse(chunk, False)
                yield
            parser.Parse(b"", True)
            yield
    except expat.ExpatError:
        raise XlsxError(f"its part {part} is not well-formed XML") from None
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise XlsxError(f"its part {part} cannot be decompressed ({type(exc).__name__})") from None


def _no_doctype(*_: object) -> None:
    raise XlsxError("a part declares a DOCTYPE, which no XLSX workbook has")


class _Text:
    """Collects the text of string items (``si``, ``is``): their ``t`` elements, rich text
    runs joined, phonetic runs (``rPh``) left out."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.collecting = False
        self.phonetic = 0

    def start(self, name: str) -> None:
        if name in _T:
            self.collecting = not self.phonetic
        elif name in _RPH:
            self.phonetic += 1

    def end(self, name: str) -> None:
        if name in _T:
            self.collecting = False
        elif name in _RPH:
            self.phonetic -= 1

    def data(self, text: str) -> None:
        if self.collecting:
            self.parts.append(text)

    def take(self) -> str:
        text = "".join(self.parts)
        self.parts.clear()
        return text


class SharedStrings:
    """The shared strings table, spilled: texts in one temporary file, their offsets in
    another; lookups read 64 KiB blocks through a small LRU cache (at most 1 MiB per file)."""

    def __init__(self) -> None:
        self._data = tempfile.TemporaryFile()
        self._offsets = tempfile.TemporaryFile()
        self.count = 0
        self._data_block = functools.lru_cache(maxsize=16)(self._block_reader(self._data))
        self._offset_block = functools.lru_cache(maxsize=16)(self._block_reader(self._offsets))

    def __enter__(self) -> SharedStrings:
        return self

    def __exit__(self, *_: object) -> None:
        self._data.close()
        self._offsets.close()

    def load(self, book: zipfile.ZipFile, part: str) -> None:
        """Spill every ``si`` of a sharedStrings part, in order."""
        data, offsets = self._data, self._offsets
        end = 0
        item = _Text()

        def start(name: str, _: dict[str, str]) -> None:
            item.start(name)

        def finish(name: str) -> None:
            nonlocal end
            if name in _SI:
                encoded = item.take().encode("utf-8", "surrogatepass")
                offsets.write(_OFFSET.pack(end))
                data.write(encoded)
                end += len(encoded)
                self.count += 1
            else:
                item.end(name)

        for _ in _parse(book, part, start, finish, item.data):
            pass
        offsets.write(_OFFSET.pack(end))
        data.flush()
        offsets.flush()

    def __getitem__(self, index: int) -> str:
        if not 0 <= index < self.count:
            raise XlsxError(f"a cell refers to shared string {index} of {self.count}")
        start, end = _PAIR.unpack(self._read(self._offset_block, self._offsets, index * 8, 16))
        return self._read(self._data_block, self._data, start, end - start).decode(
            "utf-8", "surrogatepass"
        )

    @staticmethod
    def _block_reader(file: IO[bytes]) -> Callable[[int], bytes]:
        return functools.partial(os.pread, file.fileno(), _BLOCK)

    @staticmethod
    def _read(block: Callable[[int], bytes], file: IO[bytes], at: int, size: int) -> bytes:
        number = at >> _BLOCK_BITS
        if (at + size - 1) >> _BLOCK_BITS == number:
            offset = at - (number << _BLOCK_BITS)
            return block(number << _BLOCK_BITS)[offset : offset + size]
        return os.pread(file.fileno(), size, at)  # across blocks (or empty)


class _SheetReader:
    """A worksheet's rows: expat handlers fill ``done`` with finished rows."""

    def __init__(self, strings: SharedStrings) -> None:
        self.strings = strings
        self.done: list[tuple[int, list[str]]] = []
        self.cells: list[str] = []
        self.number = 0
        self.kind: str | None = None
        self.value: list[str] = []
        self.in_value = False
        self.inline = _Text()

    def rows(self, book: zipfile.ZipFile, part: str) -> Iterator[tuple[int, list[str]]]:
        for _ in _parse(book, part, self.start, self.end, self.data):
            for number, cells in self.done:
                while cells and not cells[-1]:
                    cells.pop()
                if cells:
                    yield number, cells
            self.done.clear()

    def start(self, name: str, attributes: dict[str, str]) -> None:
        if name in _C:
            reference = attributes.get("r")
            if reference:
                column = _column(reference)
                cells = self.cells
                if column > len(cells):
                    cells.extend([""] * (column - len(cells)))
            self.kind = attributes.get("t")
        elif name in _V:
            self.in_value = True
        elif name in _ROW:
            given = attributes.get("r", "")
            self.number = int(given) if given.isdigit() else self.number + 1
            self.cells = []
        else:
            self.inline.start(name)

    def end(self, name: str) -> None:
        if name in _C:
            kind = self.kind
            text = "".join(self.value)
            self.value.clear()
            if kind == "s":
                if not text.strip().isdigit():
                    raise XlsxError(f"row {self.number} has a shared string cell without an index")
                text = self.strings[int(text)]
            inline = self.inline.take()  # an <is> item's text, if the cell has one
            if kind == "inlineStr":
                text = inline
            elif kind == "b":
                text = "TRUE" if text == "1" else "FALSE" if text == "0" else text
            self.cells.append(text)
        elif name in _V:
            self.in_value = False
        elif name in _ROW:
            self.done.append((self.number, self.cells))
        else:
            self.inline.end(name)

    def data(self, text: str) -> None:
        if self.in_value:
            self.value.append(text)
        else:
            self.inline.data(text)


def _column(reference: str) -> int:
    """``AB12`` -> 27 (0-based column)."""
    return _column_of(reference.rstrip("0123456789"))


@functools.lru_cache(maxsize=1024)
def _column_of(letters: str) -> int:
    column = 0
    for char in letters.upper():
        if not "A" <= char <= "Z":
            raise XlsxError("a cell's reference is not a column and row such as B7")
        column = column * 26 + ord(char) - 64
    return column - 1


# -- writing ---------------------------------------------------------------------------------
_OOXML = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    f'<Override PartName="/xl/workbook.xml" ContentType="{_OOXML}.sheet.main+xml"/>'
    f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{_OOXML}.worksheet+xml"/>'
    f'<Override PartName="/xl/sharedStrings.xml" ContentType="{_OOXML}.sharedStrings+xml"/>'
    f'<Override PartName="/xl/styles.xml" ContentType="{_OOXML}.styles+xml"/>'
    "</Types>"
)
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    f'<Relationships xmlns="{_REL_NS}">'
    f'<Relationship Id="rId1" Type="{_DOC_REL}/officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>"
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    f'<Relationships xmlns="{_REL_NS}">'
    f'<Relationship Id="rId1" Type="{_DOC_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{_DOC_REL}/sharedStrings" Target="sharedStrings.xml"/>'
    f'<Relationship Id="rId3" Type="{_DOC_REL}/styles" Target="styles.xml"/>'
    "</Relationships>"
)
_STYLES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    f'<styleSheet xmlns="{MAIN_NS}">'
    '<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="1"><fill><patternFill patternType="none"/></fill></fills>'
    '<borders count="1"><border/></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)
_REPEATED_KEPT = 4096  # texts remembered to share one index (form and campaign names ...)


def write_rows(path: str | Path, rows: Iterable[list[str]], sheet_name: str = "Leads") -> int:
    """Write ``rows`` (the first one a header) as a one-sheet workbook; returns the number of
    rows after the header. Memory stays flat: the strings go to a temporary file first."""
    workbook = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<workbook xmlns="{MAIN_NS}" xmlns:r="{_DOC_REL}"><sheets>'
        f'<sheet name="{escape(sheet_name, {chr(34): "&quot;"})}" sheetId="1" r:id="rId1"/>'
        "</sheets></workbook>"
    )
    count = written = 0
    known: dict[str, int] = {}
    with (
        tempfile.TemporaryFile() as spilled,
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as book,
    ):
        book.writestr("[Content_Types].xml", _CONTENT_TYPES)
        book.writestr("_rels/.rels", _ROOT_RELS)
        book.writestr(WORKBOOK, workbook)
        book.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        book.writestr("xl/styles.xml", _STYLES)
        with book.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(
                '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                f'<worksheet xmlns="{MAIN_NS}"><sheetData>'.encode()
            )
            for number, row in enumerate(rows, start=1):
                cells: list[str] = []
                for column, value in enumerate(row):
                    if not value:
                        continue
                    index = known.get(value)
                    if index is None:
                        index = count
                        count += 1
                        item = f'<si><t xml:space="preserve">{_xml(value)}</t></si>'
                        spilled.write(item.encode())
                        if len(known) < _REPEATED_KEPT:
                            known[value] = index
                    cells.append(f'<c r="{_letters(column)}{number}" t="s"><v>{index}</v></c>')
                sheet.write(f'<row r="{number}">{"".join(cells)}</row>'.encode())
                written = number
            sheet.write(b"</sheetData></worksheet>")
        with book.open("xl/sharedStrings.xml", "w", force_zip64=True) as strings:
            strings.write(
                '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                f'<sst xmlns="{MAIN_NS}" count="{count}" uniqueCount="{count}">'.encode()
            )
            spilled.seek(0)
            while chunk := spilled.read(_CHUNK):
                strings.write(chunk)
            strings.write(b"</sst>")
    return max(written - 1, 0)


def _xml(value: str) -> str:
    """Text as XML character data: escaped, and characters XML 1.0 forbids dropped."""
    text = escape(value)
    if any(ord(char) < 32 and char not in "\t\n\r" for char in text):
        text = "".join(char for char in text if ord(char) >= 32 or char in "\t\n\r")
    return text


@functools.lru_cache(maxsize=256)
def _letters(column: int) -> str:
    """0 -> A, 26 -> AA."""
    letters = ""
    column += 1
    while column:
        column, rest = divmod(column - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


__all__ = ["SharedStrings", "XlsxError", "read_rows", "write_rows"]
