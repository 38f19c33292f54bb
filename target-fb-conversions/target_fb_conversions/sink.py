"""The sink: records of any stream become events, sent in batches of up to 1000.

Record validation is ours, not the SDK's: the SDK's validation error prints the offending
value, and ``fail_on_record_validation_exception = False`` would send the record anyway. Here a
record that does not match its stream's schema goes to the rejects file with a reason that
names the field and the rule, never the value.
"""

from __future__ import annotations

import decimal
import typing as t
from concurrent.futures import Future

import jsonschema
from singer_sdk.exceptions import InvalidJSONSchema
from singer_sdk.sinks import BatchSink
from singer_sdk.sinks.core import BaseJSONSchemaValidator
from singer_sdk.typing import DEFAULT_JSONSCHEMA_VALIDATOR

from target_fb_conversions.events import BuiltEvent

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
_PLAIN_PROPERTY_KEYS = {"type", "format", "description", "title", "default", "examples"}
_PLAIN_SCHEMA_KEYS = {"type", "properties", "required", "additionalProperties", "$schema",
                      "description", "title"}


def _simple_plan(schema: dict) -> tuple[dict, list, bool] | None:
    """Type checks per property when the schema is flat and typed only, else ``None``."""
    if not isinstance(schema, dict) or set(schema) - _PLAIN_SCHEMA_KEYS:
        return None
    extra = schema.get("additionalProperties", True)
    if extra not in (True, False):
        return None
    plan: dict[str, tuple] = {}
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


class PrivateValidator(BaseJSONSchemaValidator):
    """JSON Schema validation whose messages name the field and the rule, never the value."""

    def __init__(self, schema: dict) -> None:
        super().__init__(schema)
        try:
            DEFAULT_JSONSCHEMA_VALIDATOR.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise InvalidJSONSchema(
                f"The stream's schema is not valid JSON Schema (at {list(exc.path)})."
            ) from None
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
        self._inflight: list[tuple[int, Future]] = []
        super().__init__(target, stream_name, schema, key_properties)

    # -- sizes -----------------------------------------------------------------------------

    @property
    def max_size(self) -> int:
        return self._target.batch_size

    @property
    def is_full(self) -> bool:
        pending = self._pending_batch or {}
        return len(pending.get("events", ())) >= self.max_size

    @property
    def first_pending_seq(self) -> int | None:
        """Input position of the oldest record not yet settled, or ``None``.

        A batch in flight counts until Meta has answered it; a failed one counts forever.
        """
        self._inflight = [
            (seq, future)
            for seq, future in self._inflight
            if not future.done() or future.exception() is not None
        ]
        seqs = [seq for seq, _ in self._inflight]
        pending = self._pending_batch
        if pending and pending.get("first_seq") is not None:
            seqs.append(pending["first_seq"])
        return min(seqs) if seqs else None

    # -- validation ------------------------------------------------------------------------

    def get_validator(self) -> BaseJSONSchemaValidator | None:
        if not self.validate_schema:
            return None
        return PrivateValidator(self.schema)

    def _validate_and_parse(self, record: dict) -> dict:
        """Remember the record's first schema problem; timestamps are parsed by the builder."""
        validator = self._validator
        private = isinstance(validator, PrivateValidator)
        self._problem = validator.problem(record) if private else None
        return record

    # -- records and batches ---------------------------------------------------------------

    def process_record(self, record: dict, context: dict) -> None:
        context.setdefault("first_seq", self._target.record_seq)
        events: list[BuiltEvent] = context.setdefault("events", [])
        self.run.count_record()
        problem, self._problem = self._problem, None
        if problem is not None:
            self.run.reject_record(self.stream_name, record, "invalid_record", problem)
            return
        built = self.run.accept_record(self.stream_name, record)
        if built is not None:
            events.append(built)

    def process_batch(self, context: dict) -> None:
        """Hand the batch to the sending thread; its STATEs wait until Meta has answered."""
        events: list[BuiltEvent] = context.get("events", [])
        first_seq = context.get("first_seq", self._target.record_seq)
        self.logger.info("Sending %d events from stream '%s'.", len(events), self.stream_name)
        # This batch holds back later STATEs from now on (the SDK no longer counts it as
        # pending while it drains) ...
        settled: Future = Future()
        with self._target.state_lock:
            self._inflight.append((first_seq, settled))
        # ... then wait for the batch in flight WITHOUT state_lock: its done-callback
        # (batch_settled, on the sending thread) needs that lock. Nothing waits holding it.
        self.run.wait_all()
        future = self.run.submit(self.stream_name, events)
        future.add_done_callback(lambda done: _settle(settled, done))
        settled.add_done_callback(lambda _done: self._target.batch_settled())
        context["events"] = []


def _settle(settled: Future, done: Future) -> None:
    """Give ``settled`` the outcome of the delivery ``done``."""
    error = done.exception()
    if error is None:
        settled.set_result(done.result())
    else:
        settled.set_exception(error)
