"""``meltano config test target-fb-conversions``: one harmless call that checks the token and
the destination, instead of a run that passes whatever the token.

Meltano tests a loader by sending it a stream named ``meltano_test_stream`` (a SCHEMA, a few
records with ``id``, ``name``, ``created_at``, a STATE). Those records are no stage changes: as
CRM records they would all be rejected without a call, and the test would pass with any
token. The target therefore answers that stream with ``GET /{dataset_id}?fields=id,name`` (or
the offline event set's id): Meta refuses a wrong or expired token, a token without access to
the dataset, or an unknown dataset, and the run fails with that one sentence. No event is
sent and nothing is written to the ledger or the rejects file.

``target-fb-conversions --check-connection`` (``meltano invoke target-fb-conversions
--check-connection``) does the same without any input. Meltano 4.4.1's own ``meltano config
test`` of a loader ends in a ``ProcessLookupError`` once the loader has exited (its test
service terminates the process it has already waited for), whatever the loader answered.
"""

from __future__ import annotations

import json
import typing as t
from collections.abc import Iterator

from singer_sdk.sinks import BatchSink
from typing_extensions import override

if t.TYPE_CHECKING:
    from target_fb_conversions.target import TargetFbConversions

MELTANO_TEST_STREAM = "meltano_test_stream"


def check_input() -> Iterator[str]:
    """``--check-connection``'s input: the SCHEMA of Meltano's test stream, no record."""
    schema = {"type": "object", "properties": {"id": {"type": "integer"}}}
    yield json.dumps({"type": "SCHEMA", "stream": MELTANO_TEST_STREAM, "schema": schema,
                      "key_properties": ["id"]}) + "\n"  # fmt: skip


class ConnectionTestSink(BatchSink):
    """Meltano's test stream: the check runs when its SCHEMA arrives; its records are dropped."""

    def __init__(
        self,
        target: TargetFbConversions,
        stream_name: str,
        schema: dict,
        key_properties: t.Sequence[str] | None,
    ) -> None:
        super().__init__(target, stream_name, schema, key_properties)
        target.check_connection()

    @override
    def process_record(self, record: dict, context: dict) -> None:
        """Meltano's sample rows are not stage changes: nothing to send."""

    @override
    def process_batch(self, context: dict) -> None:
        """Nothing was collected."""
