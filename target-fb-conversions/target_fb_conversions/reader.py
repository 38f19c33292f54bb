"""Reading Singer messages without ever echoing an input line (it may hold personal data)."""

from __future__ import annotations

import json
import typing as t
from collections.abc import Iterable, Iterator

from singer_sdk.exceptions import InvalidInputLine
from singer_sdk.io_base import SingerReader
from singer_sdk.singerlib.json import deserialize_json


class PrivateSingerReader(SingerReader):
    """The SDK's reader, but a line that is not JSON is reported by position, not content;
    blank lines are skipped; input that is not UTF-8 is one sentence naming the line.

    Integers stay Python ints (exact at any size: 17-digit lead ids survive); decimals become
    ``Decimal``.
    """

    def __init__(self) -> None:
        super().__init__()
        self._line_number = 0

    def process_lines(
        self, file_input: t.IO[str] | None, callbacks: dict[str, t.Callable[[dict], None]]
    ) -> t.Counter[str]:
        return super().process_lines(
            self._lines(file_input or self.default_input),  # type: ignore[arg-type]
            callbacks,
        )

    def _lines(self, source: Iterable[str]) -> Iterator[str]:
        """The non-blank lines of ``source``, counting every line (blank ones too); a file's
        bytes are decoded line by line, so a line that is not UTF-8 is named exactly."""
        raw: Iterable[bytes | str] = getattr(source, "buffer", None) or source
        for line in raw:
            self._line_number += 1
            if isinstance(line, bytes):
                try:
                    line = line.decode("utf-8")
                except UnicodeDecodeError:
                    raise InvalidInputLine(
                        f"Input line {self._line_number} is not UTF-8 text: the tap's output "
                        "must be UTF-8 JSON (the line is not shown because it may hold "
                        "personal data)."
                    ) from None
            if line.strip():
                yield line

    def deserialize_json(self, line: str) -> dict:
        try:
            message = deserialize_json(line)
        except json.JSONDecodeError:
            raise InvalidInputLine(
                f"Input line {self._line_number} is not valid JSON: the tap's output is broken "
                "(the line is not shown because it may hold personal data)."
            ) from None
        if not isinstance(message, dict):
            raise InvalidInputLine(
                f"Input line {self._line_number} is not a JSON object: not a Singer message."
            )
        return message

    @staticmethod
    def assert_line_requires(line_dict: dict, requires: set[str]) -> None:
        missing = requires - set(line_dict)
        if missing:
            raise InvalidInputLine(
                f"A message is missing its {', '.join(sorted(missing))}: not valid Singer."
            )

    def _process_unknown_message(self, message_dict: dict) -> None:
        raise InvalidInputLine(
            f"Input line {self._line_number} has the unknown message type "
            f"{str(message_dict.get('type'))[:40]!r}: not a Singer message."
        )
