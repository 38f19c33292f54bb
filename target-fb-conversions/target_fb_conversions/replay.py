"""``--replay-rejects FILE``: send the rows of a rejects file again, once their cause is fixed.

A rejects row holds no raw personal data, but a row whose event could be built holds that event
as it was (or would have been) sent: lead id, hashes, stage, time and ``event_id``. Such a row
becomes a record again (the hashes go in as they are: a 64-hex value is never hashed twice) and
goes through the usual path with **today's** settings: stage_mapping, lead_event_source, the
time window, the ledger (so nothing already acknowledged is sent twice), the rejects file. The
same ``event_id`` is kept, so Meta's dedupe holds too. A row without an event (a bad lead id, no
match key, no stage...) cannot be rebuilt: its cause is in the CRM record; it is kept as it was.

Replaying the file that is also ``rejects_path`` leaves in it, once the replay has succeeded,
only the rows kept and the rows that failed again; a failed replay leaves it untouched.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from target_fb_conversions.events import CONVERSIONS_API, HASHED_COLUMNS, OFFLINE_CONVERSIONS
from target_fb_conversions.privacy import is_hidden
from target_fb_conversions.rejects import RejectsFile

_COLUMN_OF = {
    CONVERSIONS_API: {keys[0]: column for column, keys in HASHED_COLUMNS.items()},
    OFFLINE_CONVERSIONS: {keys[1]: column for column, keys in HASHED_COLUMNS.items()},
}
_PERMISSIVE_SCHEMA = {"type": "object", "properties": {}}


class ReplayError(Exception):
    """The file to replay cannot be read; one sentence saying which and why."""


@dataclass
class Replay:
    """The rows of one rejects file, split into records to send again and rows to keep."""

    path: Path
    records: list[tuple[str, dict]] = field(default_factory=list)
    kept: list[dict] = field(default_factory=list)
    _swap: Path | None = None

    @classmethod
    def read(cls, path: str | Path, api: str) -> Replay:
        replay = cls(Path(path).expanduser())
        try:
            with replay.path.open(encoding="utf-8") as handle:
                for number, line in enumerate(handle, start=1):
                    if line.strip():
                        replay._add(_row(line, number, replay.path), api)
        except (OSError, UnicodeDecodeError) as exc:
            raise ReplayError(
                f"The rejects file {replay.path} cannot be read "
                f"({getattr(exc, 'strerror', None) or type(exc).__name__}): give the path of "
                "the rejects_path file of an earlier run."
            ) from None
        return replay

    def _add(self, row: dict, api: str) -> None:
        record = record_of(row, api)
        if record is None:
            self.kept.append(row)
        else:
            self.records.append((str(row.get("stream") or "replayed_rejects"), record))

    def singer_lines(self) -> Iterator[str]:
        """A SCHEMA per stream and a RECORD per row to send again (no STATE: there is none)."""
        streams: set[str] = set()
        for stream, record in self.records:
            if stream not in streams:
                streams.add(stream)
                yield json.dumps(
                    {
                        "type": "SCHEMA",
                        "stream": stream,
                        "schema": _PERMISSIVE_SCHEMA,
                        "key_properties": [],
                    }
                )
            yield json.dumps({"type": "RECORD", "stream": stream, "record": record})

    def rejects_file(self, rejects_path: str | Path) -> RejectsFile:
        """Where the run writes what fails again (a new file when it is the one replayed),
        with the rows kept written first."""
        target = Path(rejects_path).expanduser()
        if target.resolve() == self.path.resolve():
            self._swap = target.with_name(target.name + ".replay")
            self._swap.unlink(missing_ok=True)
            target = self._swap
        rejects = RejectsFile(target)
        for row in self.kept:
            rejects.write(row)
        return rejects

    def finish(self, *, failed: bool) -> None:
        """Put the new rows in place of the replayed file, or drop them after a failure."""
        if self._swap is None:
            return
        if failed:
            self._swap.unlink(missing_ok=True)
        else:
            self._swap.touch()
            os.replace(self._swap, self.path)

    def summary(self) -> str:
        return (
            f"Replay: {len(self.records) + len(self.kept)} rows read from {self.path}: "
            f"{len(self.records)} sent again through the usual checks, {len(self.kept)} kept as "
            "they were (no event to rebuild: fix those records in the CRM)."
        )


def _row(line: str, number: int, path: Path) -> dict:
    try:
        row = json.loads(line)
    except ValueError:
        row = None
    if not isinstance(row, dict) or "reason" not in row:
        raise ReplayError(
            f"Line {number} of {path} is not a rejects row (a JSON object with a reason): give "
            "the path of the rejects_path file of an earlier run."
        )
    return row


def record_of(row: Mapping[str, object], api: str) -> dict | None:
    """The record that rebuilds the row's event with today's settings, or ``None``."""
    event = row.get("event")
    if not isinstance(event, Mapping):
        return None
    custom = event.get("custom_data")
    custom = custom if isinstance(custom, Mapping) else {}
    made_for = CONVERSIONS_API if "user_data" in event else OFFLINE_CONVERSIONS
    keys = event.get("user_data") if made_for == CONVERSIONS_API else event.get("match_keys")
    stage = custom.get("lifecycle_stage_name") or (
        event.get("event_name") if made_for == CONVERSIONS_API else None
    )
    if not isinstance(stage, str) or is_hidden(stage) or not isinstance(keys, Mapping):
        return None
    record: dict[str, object] = {"stage": stage, "stage_changed_at": event.get("event_time")}
    for key, values in keys.items():
        column = _COLUMN_OF[made_for].get(key)
        if key == "lead_id":
            record["lead_id"] = str(values)
        elif column and (column != "date_of_birth" or made_for == api):  # db and doby differ
            kept = [v for v in values if isinstance(v, str) and not is_hidden(v)]
            if kept:
                record[column] = kept
    for name, value in (
        ("event_id", event.get("event_id")),
        ("lead_event_source", custom.get("lead_event_source")),
    ):
        if isinstance(value, str) and not is_hidden(value):
            record[name] = value
    for name in ("value", "currency"):
        if name in custom:
            record[name] = custom[name]
    return record
