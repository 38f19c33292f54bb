"""Lead export files: finding them (paths, glob patterns, fsspec URLs), their sha256, and their
rows streamed one at a time whatever the format.

Formats (detected, never taken from the file name): UTF-16 LE or BE with a BOM (Meta's older
files, tab-separated despite ``.csv``), UTF-8 with or without a BOM, tab- or comma-separated
(the header line decides), and XLSX (the first worksheet, :mod:`fb_graph.xlsx`: its XML is
parsed as it is decompressed, its shared strings spilled to a temporary file). Memory stays flat
in the number of rows.

Paths go through ``fsspec`` (a dependency of singer-sdk): local paths and ``file://`` work as
they are; ``s3://``, ``gs://``, ``az://`` ... need that protocol's fsspec package installed
(``s3fs``, ``gcsfs``, ``adlfs``), which fb-leads does not install.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

from fsspec.core import url_to_fs  # type: ignore[import-untyped]
from typing_extensions import override

from fb_graph.xlsx import XlsxError, read_rows

HASH_CHUNK = 1 << 20
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_ZIP = b"PK\x03\x04"
_GLOB = frozenset("*?[")
csv.field_size_limit(1 << 24)  # a long free-text answer is one field


class ExportFileError(RuntimeError):
    """A configured export file that cannot be read: one sentence naming it."""


@dataclass(frozen=True)
class ExportFile:
    """One file to read: where it is and the sha256 of its bytes."""

    name: str
    """As shown in records (``source_file``) and logs: the path or URL."""
    fs: Any
    path: str
    sha256: str

    def open(self) -> IO[bytes]:
        return self.fs.open(self.path, "rb")


def find_files(patterns: Sequence[str]) -> list[ExportFile]:
    """Every file the patterns name, sorted within a pattern, each once (by path), hashed.

    A path that does not exist, or a pattern that matches no file, is an
    :class:`ExportFileError`: a configured file that is not there is a mistake to fix.
    """
    found: list[ExportFile] = []
    seen: set[str] = set()
    for pattern in patterns:
        try:
            fs, root = url_to_fs(pattern)
        except (ImportError, ValueError) as exc:
            raise ExportFileError(
                f"export_files {pattern!r} cannot be opened ({_first_line(exc)}): use a local "
                "path, or install the fsspec package of its protocol (s3fs, gcsfs, adlfs)."
            ) from None
        try:
            if _GLOB & set(root):
                paths = sorted(p for p in fs.glob(root) if fs.isfile(p))
                if not paths:
                    raise ExportFileError(f"export_files pattern {pattern!r} matches no file.")
            elif fs.isfile(root):
                paths = [root]
            else:
                what = "is a directory, not a file" if fs.isdir(root) else "does not exist"
                raise ExportFileError(
                    f"export_files {pattern!r} {what}: give the path of an export file, or a "
                    "glob pattern such as leads/*.csv."
                )
            for path in paths:
                name = path if _is_local(fs) else fs.unstrip_protocol(path)
                if name in seen:
                    continue
                seen.add(name)
                found.append(ExportFile(name, fs, path, _sha256(fs, path, name)))
        except OSError as exc:
            raise ExportFileError(
                f"Could not read export file {pattern!r}: {_first_line(exc)}."
            ) from None
    return found


def _sha256(fs: Any, path: str, name: str) -> str:
    digest = hashlib.sha256()
    try:
        with fs.open(path, "rb") as handle:
            while chunk := handle.read(HASH_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise ExportFileError(f"Could not read export file {name}: {_first_line(exc)}.") from None
    return digest.hexdigest()


def _is_local(fs: Any) -> bool:
    protocol = fs.protocol
    return "file" in (protocol if isinstance(protocol, (tuple, list)) else (protocol,))


@dataclass
class Table:
    """A file's header and its rows, each with its line (text) or row number (XLSX)."""

    header: list[str]
    rows: Iterator[tuple[int, list[str]]]
    kind: str
    """``xlsx``, or the text's encoding and delimiter, e.g. ``utf-16-le, tabs``."""


def open_table(handle: IO[bytes], name: str) -> Table:
    """The rows of an open binary export file, read as they are needed."""
    start = handle.read(4)
    if start.startswith(_ZIP):
        return _xlsx_table(handle, name)
    encoding, bom = _encoding(start)
    rest = start[bom:]
    stream = io.BufferedReader(_Prefixed(rest, handle), buffer_size=HASH_CHUNK // 4)
    text = io.TextIOWrapper(stream, encoding=encoding, newline="")
    try:
        first = text.readline()
    except UnicodeDecodeError:
        raise ExportFileError(
            f"Export file {name} is not text in UTF-8 or UTF-16 (nor an XLSX workbook)."
        ) from None
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    reader = csv.reader(itertools.chain([first], text), delimiter=delimiter)
    try:
        header = next(reader, [])
    except csv.Error:
        header = []
    kind = f"{encoding}{' with BOM' if bom else ''}, {'tabs' if delimiter == chr(9) else 'commas'}"
    return Table(header, _text_rows(reader, name), kind)


def _encoding(start: bytes) -> tuple[str, int]:
    for bom, encoding in _BOMS:
        if start.startswith(bom):
            return encoding, len(bom)
    if len(start) >= 2 and start[1] == 0 and start[0] != 0:
        return "utf-16-le", 0  # UTF-16 without a BOM: ASCII letters with zero bytes
    if len(start) >= 2 and start[0] == 0 and start[1] != 0:
        return "utf-16-be", 0
    return "utf-8", 0


def _text_rows(reader: Any, name: str) -> Iterator[tuple[int, list[str]]]:
    line = reader.line_num
    try:
        for row in reader:
            if row:
                yield line + 1, row
            line = reader.line_num
    except UnicodeDecodeError:
        raise ExportFileError(
            f"Export file {name} has bytes that are not its text encoding after line {line}: "
            "download it again."
        ) from None
    except csv.Error as exc:
        raise ExportFileError(
            f"Export file {name} cannot be read after line {line} ({_first_line(exc)})."
        ) from None


class _Prefixed(io.RawIOBase):
    """The bytes already read from a file, then the rest of it (a file may not seek back)."""

    def __init__(self, head: bytes, handle: IO[bytes]) -> None:
        self._head = head
        self._handle = handle

    @override
    def readable(self) -> bool:
        return True

    @override
    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)
        if self._head:
            size = min(len(view), len(self._head))
            view[:size] = self._head[:size]
            self._head = self._head[size:]
            return size
        data = self._handle.read(len(view))
        view[: len(data)] = data
        return len(data)


def _xlsx_table(handle: IO[bytes], name: str) -> Table:
    handle.seek(0)
    rows = read_rows(handle)
    try:
        _, header = next(rows, (0, []))
    except XlsxError as exc:
        raise ExportFileError(
            f"Export file {name} looks like an XLSX workbook but cannot be read: {exc}."
        ) from None

    def checked() -> Iterator[tuple[int, list[str]]]:
        number = 1
        try:
            for number, cells in rows:
                yield number, cells
        except XlsxError as exc:
            raise ExportFileError(
                f"Export file {name} cannot be read after row {number}: {exc}."
            ) from None

    return Table(header, checked(), "xlsx")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].rstrip(".") if text else type(exc).__name__


__all__ = [
    "ExportFile",
    "ExportFileError",
    "Table",
    "find_files",
    "open_table",
]
