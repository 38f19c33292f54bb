"""The sink: records of any stream become events, sent in batches of up to 1000.

Record validation is ours, not the SDK's: the SDK's validation error prints the offending
value, and ``fail_on_record_validation_exception = False`` would send the record anyway. Here a
record that does not match its stream's schema goes to the rejects file with a reason that
names the field and the rule, never the value.
"""

from __future__ import annotations

import decimal
import typing as t
from concurrent.futures import CancelledError, Future

import jsonschema
from singer_sdk.sinks import BatchSink
from singer_sdk.sinks.core import BaseJSONSchemaValidator
from singer_sdk.typing import DEFAULT_JSONSCHEMA_VALIDATOR
from typing_extensions import override

from target_fb_conversions.business_messaging import MessagingEvent, is_messenger_record
from target_fb_conversions.events import BuiltEvent
from target_fb_conversions.followups import Followup

if t.TYPE_CHECKING:
    from target_fb_conversions.target import TargetFbConversions


_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float, decimal.Decimal),
    "boolean": (bool,),
    "null": (type(None),),
    "object": (dict,),
    "array": (list,),
}
# The SDK's metadata columns, removed from every record (Sink._remove_sdc_metadata_from_record).
_SDC_COLUMNS = frozenset(
    {
        "_sdc_extracted_at",
        "_sdc_received_at",
        "_sdc_batched_at",
        "_sdc_deleted_at",
        "_sdc_sequence",
        "_sdc_table_version",
    }
)
_PLAIN_PROPERTY_KEYS = {"type", "format", "description", "title", "default", "examples"}
_PLAIN_SCHEMA_KEYS = {
    "type",
    "properties",
    "required",
    "additionalProperties",
    "$schema",
    "description",
    "title",
}


def _simple_plan(schema: dict) -> tuple[dict[str, frozenset[type]], list, bool] | None:
    """Type checks per property when the schema is flat and typed only, else ``None``."""
    if not isinstance(schema, dict) or set(schema) - _PLAIN_SCHEMA_KEYS:
        return None
    extra = schema.get("additionalProperties", True)
    if extra not in (True, False):
        return None
    plan: dict[str, frozenset[type]] = {}
    for name, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, dict) or set(prop) - _PLAIN_PROPERTY_KEYS or "type" not in prop:
            return None
        types = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
        if any(kind not in _PYTHON_TYPES for kind in types):
            return None
        plan[name] = frozenset(py for kind in types for py in _PYTHON_TYPES[kind])
    required = schema.get("required") or []
    if not isinstance(required, list):
        return None
    return plan, required, extra is False


def schema_problem(schema: object) -> str | None:
    """What is wrong with a stream's schema (words that follow "The SCHEMA message of stream
    X"), or ``None``; never the schema's values."""
    if not isinstance(schema, dict):
        return f"holds {type(schema).__name__}, not a JSON Schema object"
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        kind = "none" if properties is None else type(properties).__name__
        return (
            f"has no 'properties' object (it has {kind}): a stream's schema must be a JSON "
            "Schema object whose properties name the record's columns"
        )
    try:
        DEFAULT_JSONSCHEMA_VALIDATOR.check_schema(schema)
    except jsonschema.SchemaError as exc:
        return f"is not valid JSON Schema (at {list(exc.path)})"
    return None


class PrivateValidator(BaseJSONSchemaValidator):
    """JSON Schema validation whose messages name the field and the rule, never the value.

    The schema itself was checked when its SCHEMA message came (:func:`schema_problem`).
    """

    def __init__(self, schema: dict) -> None:
        super().__init__(schema)
        self.validator = DEFAULT_JSONSCHEMA_VALIDATOR(
            schema, format_checker=jsonschema.FormatChecker(formats=())
        )
        self._plan = _simple_plan(schema)

    def _surely_valid(self, record: dict) -> bool:
        """Fast path for flat schemas of typed properties; ``False`` means "ask jsonschema"."""
        plan, required, closed = self._plan  # type: ignore[misc]
        for name in required:
            if name not in record:
                return False
        for name, value in record.items():
            allowed = plan.get(name)
            if allowed is None:
                if closed:
                    return False
                continue
            if type(value) not in allowed:  # exact types: a bool is not an integer here
                return False
        return True

    def problem(self, record: dict) -> str | None:
        """One sentence about the first problem, or ``None`` when the record is valid."""
        if self._plan is not None and self._surely_valid(record):
            return None
        error = jsonschema.exceptions.best_match(self.validator.iter_errors(record))
        if error is None:
            return None
        where = ".".join(str(part) for part in error.absolute_path) or "(the record)"
        if error.validator == "required":
            missing = [
                name
                for name in (error.validator_value or [])
                if isinstance(error.instance, dict) and name not in error.instance
            ]
            return f"Field {', '.join(missing) or where} is required by the stream's schema."
        if error.validator == "type":
            return f"Field {where} is not of type {error.validator_value} as the schema says."
        return f"Field {where} breaks the schema's {error.validator!r} rule."

    @override
    def validate(self, record: dict) -> None:  # the SDK's interface; we use problem()
        _ = record


class ConversionsSink(BatchSink):
    """Builds one event per record and hands full batches to the run for delivery."""

    def __init__(
        self,
        target: TargetFbConversions,
        stream_name: str,
        schema: dict,
        key_properties: t.Sequence[str] | None,
    ) -> None:
        self._target = target
        self.run = target.run
        self._problem: str | None = None
        self._batch_limit = target.settings.batch_size
        # take() skips the SDK's steps that do nothing here.
        self._preprocesses = type(self).preprocess_record is not BatchSink.preprocess_record
        super().__init__(target, stream_name, schema, key_properties)

    # -- sizes -----------------------------------------------------------------------------

    @override
    @property
    def max_size(self) -> int:
        return self._batch_limit

    @override
    @property
    def is_full(self) -> bool:
        pending = self._pending_batch or {}
        return len(pending.get("events", ())) >= self.max_size

    @property
    def first_unsent_seq(self) -> int | None:
        """Input position of the first record of the batch still being built, or ``None``.

        Drained batches are held by the STATE gate (see :meth:`start_drain`).
        """
        pending = self._pending_batch
        return pending.get("first_seq") if pending else None

    # -- validation ------------------------------------------------------------------------

    @override
    def get_validator(self) -> BaseJSONSchemaValidator | None:
        if not self.validate_schema:
            return None
        return PrivateValidator(self.schema)

    @override
    def _validate_and_parse(self, record: dict) -> dict:
        """Remember the record's first schema problem; timestamps are parsed by the builder."""
        validator = self._validator
        private = validator if isinstance(validator, PrivateValidator) else None
        self._problem = private.problem(record) if private is not None else None
        return record

    # -- records and batches ---------------------------------------------------------------

    def take(self, record: dict) -> None:
        """One record of a stream read as it comes (no stream map, no flattening, no ``_sdc``
        columns added): the steps of the SDK's ``Target._process_record_message`` in its
        order, without its copy of the record (nothing else holds it) and its look-ups.
        The target drains the sink when it is full (:meth:`TargetFbConversions.
        _process_record_message`)."""
        context = self._pending_batch
        if context is None:
            context = self._get_context(record)
        if not _SDC_COLUMNS.isdisjoint(record):
            self._remove_sdc_metadata_from_record(record)
        self._validate_and_parse(record)
        if self._preprocesses:
            record = self.preprocess_record(record, context)
        if self._key_properties:
            self._singer_validate_message(record)
        self.tally_record_read()
        self.process_record(record, context)
        self.record_counter_metric.increment()

    @override
    def process_record(self, record: dict, context: dict) -> None:
        position = self._target.record_seq
        events: list[BuiltEvent] | None = context.get("events")
        if events is None:
            context.setdefault("first_seq", position)
            events = context["events"] = []
        run = self.run
        run.count_record()
        problem = self._problem
        if problem is not None:
            self._problem = None
            run.reject_record(self.stream_name, record, "invalid_record", problem, position)
            return
        built = run.accept_record(self.stream_name, record, position)
        if built is not None:
            events.append(built)

    @override
    def _after_process_record(self, context: dict) -> None:
        """Nothing per record: the SDK logged the whole batch here at DEBUG, for every record
        (output growing with the square of the batch size)."""

    @override
    def start_drain(self) -> dict:
        """Take the batch being built and, in the same step under the STATE gate's lock, hold
        back the STATEs after its first record until Meta has answered it.

        The SDK clears ``_pending_batch`` here: doing both at once leaves no moment in which
        the batch is counted nowhere and a STATE could pass its records.
        """
        gate = self._target.state_gate
        with gate.lock:
            context = super().start_drain()
            first_seq = context.get("first_seq")
            if first_seq is not None:
                context["settled"] = gate.hold(first_seq)
        return context

    @override
    def process_batch(self, context: dict) -> None:
        """Hand the batch to the sending thread; its STATEs wait until Meta has answered."""
        events: list[BuiltEvent] = context.get("events", [])
        settled: Future | None = context.get("settled")
        self._log_batch(context)
        # Wait for the batch in flight (and raise its failure) WITHOUT the gate's lock: its
        # done-callback (StateGate.release, on the sending thread) needs that lock.
        future = self.run.submit(
            self.stream_name, events, context.get("messaging", ()), context.get("followups", ())
        )
        if settled is not None:
            future.add_done_callback(lambda done: _settle(settled, done))
        context["events"] = []

    def _log_batch(self, context: dict) -> None:
        events = context.get("events", [])
        self.logger.info("Sending %d events from stream '%s'.", len(events), self.stream_name)


class MessengerStageSink(ConversionsSink):
    """A CRM stage stream whose schema has a ``psid`` column: a record with ``psid`` and
    ``page_id`` and no ``lead_id`` is a Messenger lead's stage change, sent as a
    business-messaging event (:mod:`.business_messaging`); the others as CRM events.

    Streams without a ``psid`` column get :class:`ConversionsSink`, which never looks."""

    @override
    @property
    def is_full(self) -> bool:
        pending = self._pending_batch or {}
        size = len(pending.get("events", ())) + len(pending.get("messaging", ()))
        return size >= self.max_size

    @override
    def process_record(self, record: dict, context: dict) -> None:
        if not is_messenger_record(self.run.builder.columns(record)):
            super().process_record(record, context)
            return
        context.setdefault("first_seq", self._target.record_seq)
        messaging: list[MessagingEvent] = context.setdefault("messaging", [])
        self.run.count_record()
        problem, self._problem = self._problem, None
        position = self._target.record_seq
        if problem is not None:
            self.run.reject_record(self.stream_name, record, "invalid_record", problem, position)
            return
        event = self.run.accept_messaging_record(self.stream_name, record, position)
        if event is not None:
            messaging.append(event)

    @override
    def _log_batch(self, context: dict) -> None:
        self.logger.info(
            "Sending %d events and %d business-messaging events from stream '%s'.",
            len(context.get("events", [])),
            len(context.get("messaging", [])),
            self.stream_name,
        )


FOLLOWUP_BATCH = 100


class FollowupSink(ConversionsSink):
    """A follow-up stream: each record is a message (:mod:`.followups`), sent on the sending
    thread in batches of up to :data:`FOLLOWUP_BATCH` (STATE waits for each batch)."""

    @override
    @property
    def max_size(self) -> int:
        return FOLLOWUP_BATCH

    @override
    @property
    def is_full(self) -> bool:
        pending = self._pending_batch or {}
        return len(pending.get("followups", ())) >= self.max_size

    @override
    def process_record(self, record: dict, context: dict) -> None:
        context.setdefault("first_seq", self._target.record_seq)
        followups: list[Followup] = context.setdefault("followups", [])
        self.run.count_record()
        problem, self._problem = self._problem, None
        position = self._target.record_seq
        messenger = self.run.messenger
        if problem is not None:
            assert messenger is not None
            messenger.followups.reject(
                self.stream_name, None, "invalid_record", problem, columns=record
            )
            return
        message = self.run.accept_followup(self.stream_name, record, position)
        if message is not None:
            followups.append(message)

    @override
    def _log_batch(self, context: dict) -> None:
        self.logger.info(
            "Sending %d follow-up messages from stream '%s'.",
            len(context.get("followups", [])),
            self.stream_name,
        )


def has_psid_column(schema: dict, field_mapping: t.Mapping[str, str]) -> bool:
    """Whether a stream's records may be Messenger leads (a ``psid`` column, or one mapped to
    ``psid``): decided once per stream, so other streams pay nothing per record."""
    properties = schema.get("properties") or {}
    return "psid" in properties or any(field_mapping.get(name) == "psid" for name in properties)


def _settle(settled: Future, done: Future) -> None:
    """Give ``settled`` the outcome of the delivery ``done`` (cancelled counts as failed)."""
    if done.cancelled():
        settled.set_exception(CancelledError())
        return
    error = done.exception()
    if error is None:
        settled.set_result(done.result())
    else:
        settled.set_exception(error)
