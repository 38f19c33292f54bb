"""target-fb-conversions: CRM lead-stage changes to hashed Conversions API events, each once."""

from __future__ import annotations

import dataclasses
import gc
import json
import sys
import typing as t

import click
from singer_sdk import Target
from singer_sdk.exceptions import (
    ConfigValidationError,
    InvalidInputLine,
    InvalidJSONSchema,
    MissingKeyPropertiesError,
    RecordsWithoutSchemaException,
)
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.sinks import Sink
from typing_extensions import override

from fb_graph.errors import GraphError
from fb_graph.redact import redact
from fb_graph.settings import unknown_settings
from target_fb_conversions.connection_test import (
    MELTANO_TEST_STREAM,
    ConnectionTestSink,
    check_input,
)
from target_fb_conversions.events import OFFLINE_CONVERSIONS
from target_fb_conversions.ledger import LedgerError
from target_fb_conversions.messenger_sending import resend_unconfirmed
from target_fb_conversions.readback import read_back_input
from target_fb_conversions.reader import PrivateSingerReader
from target_fb_conversions.replay import Replay, ReplayError
from target_fb_conversions.run import ConversionsRun, SettingProblem
from target_fb_conversions.sender import SendError
from target_fb_conversions.settings import (
    CONFIG_SCHEMA,
    NAME,
    BadSettings,
    Settings,
    read_settings,
    secrets_in,
)
from target_fb_conversions.sink import (
    ConversionsSink,
    FollowupSink,
    MessengerStageSink,
    has_psid_column,
    schema_problem,
)
from target_fb_conversions.state_gate import StateGate

# Container allocations, net of those freed, between two collections of the youngest
# generation (Python: 700). An event keeps about 12 containers alive until its batch is sent
# (its dicts, a list per hashed field, BuiltEvent): about 24,000 for the batch being built and
# the one in flight. Above that, the collector no longer runs in the steady state (the count
# goes back down when a batch is freed); it still runs when anything else piles up.
GC_THRESHOLD = 50_000

# Seconds the main thread may keep the GIL while the sending thread waits for it (Python: 5 ms).
# The sending thread needs the GIL back after each blocking socket call of a POST (sending the
# body, reading the answer); with the main thread busy building the next batch, each of those
# waits up to the whole interval. At 1 ms a batch took 70-81 ms to send instead of 94-100 ms
# (100,000 records, runs alternated at load 3-4: 9.9-11.9 s in all against 12.6-13.8 s).
SWITCH_INTERVAL = 0.001

# Errors that end the run with one sentence (and the summary), never a traceback.
FATAL_ERRORS = (
    SendError,
    GraphError,
    LedgerError,
    SettingProblem,
    ReplayError,
    InvalidInputLine,
    InvalidJSONSchema,
    MissingKeyPropertiesError,
    RecordsWithoutSchemaException,
    OSError,
)


def _write_line(line: str) -> None:
    """One line to the target's output (Singer STATE), flushed at once."""
    sys.stdout.write(line)
    sys.stdout.flush()


FLAGS = (
    (
        "--list-unconfirmed",
        "list_unconfirmed",
        "Print (JSON lines) the Messenger messages and business-messaging events "
        "the ledger holds in flight: sent when a run stopped, Meta's answer unknown. "
        "No Singer input is read.",
    ),
    (
        "--resend-unconfirmed",
        "resend_unconfirmed",
        "Once checked that Meta does not have them, send the business-messaging "
        "events the ledger holds in flight again (at most once); unconfirmed messages "
        "are dropped from the ledger (their text is not kept). No Singer input is read.",
    ),
    (
        "--check-connection",
        "check_connection",
        "Check the token and the dataset (or offline event set) with one harmless "
        "call, GET /{id}?fields=id,name; nothing is sent. No Singer input is read.",
    ),
    (
        "--read-back",
        "read_back",
        "Print what Meta made of the events of the last 7 days (the dataset's "
        "stats and data quality) next to what the ledger holds as sent. No Singer input.",
    ),
)
"""The CLI's flags that run something else than a Singer run: (option, name, help)."""


class TargetFbConversions(Target):
    """Sends one Conversions API CRM event per CRM stage change."""

    name = NAME
    default_sink_class = ConversionsSink
    message_reader_class = PrivateSingerReader
    config_jsonschema = CONFIG_SCHEMA

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        self._settings: Settings | None = None
        self.record_seq = 0
        """Records read so far: the input position of the last one."""
        self.replay: Replay | None = None
        self._schema_read: dict = {}
        # Stream -> its sink, for streams whose records need none of the SDK's mapping.
        self._plain_sinks: dict[str, ConversionsSink] = {}
        super().__init__(*args, **kwargs)
        TargetFbConversions._current = self
        self.state_gate = StateGate(
            _write_line, self._batches_being_built, dry_run=self.settings.dry_run
        )
        self.run = ConversionsRun.open(self.settings, self.logger)
        if self._replay_path is not None:
            self._start_replay(self._replay_path)

    _current: TargetFbConversions | None = None
    # The file of ``--replay-rejects`` (the CLI sets it before the target is made).
    _replay_path: str | None = None
    # "list" or "resend" for --list-unconfirmed / --resend-unconfirmed.
    _unconfirmed_command: str | None = None

    # -- settings --------------------------------------------------------------------------

    @override
    @classmethod
    def append_builtin_config(cls, config_jsonschema: dict) -> None:
        """The SDK's built-in settings, minus those that mean nothing here (batch_size is ours,
        nothing is loaded or upserted, no _sdc columns are sent to Meta)."""
        super().append_builtin_config(config_jsonschema)
        for name in ("load_method", "batch_size_rows", "add_record_metadata"):
            config_jsonschema["properties"].pop(name, None)

    @property
    def settings(self) -> Settings:
        """The settings, read once (when the config is validated)."""
        if self._settings is None:
            self._settings = read_settings(self._config)
        return self._settings

    @override
    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """The SDK's schema check (with secrets cut out of its messages), then ours."""
        errors = super()._validate_config(raise_errors=False)
        secrets = secrets_in(self._config)
        errors = [redact(error, secrets) for error in errors]
        if not errors:
            try:
                self._settings = read_settings(self._config)
            except BadSettings as exc:
                errors = exc.problems
        for warning in unknown_settings(self._config, self.config_jsonschema["properties"]):
            self.logger.warning("%s", warning)
        if errors and raise_errors:
            raise ConfigValidationError(
                "Config validation failed", errors=errors, schema=self.config_jsonschema
            )
        return errors

    # -- sinks -----------------------------------------------------------------------------

    @override
    def get_sink_class(self, stream_name: str) -> type[Sink]:
        """The sink class by the stream's name and schema (the SCHEMA message being read):
        follow-up streams, CRM streams with a ``psid`` column, the others (see :mod:`.sink`)."""
        if stream_name == MELTANO_TEST_STREAM:
            return ConnectionTestSink
        if stream_name in self.settings.followup_streams:
            return FollowupSink
        if has_psid_column(self._schema_read, self.settings.field_mapping):
            return MessengerStageSink
        return ConversionsSink

    def check_connection(self) -> None:
        """One harmless call that Meta refuses for a wrong token or destination (see
        :mod:`.connection_test`); a refusal ends the run with its one sentence."""
        sender = self.run.sender
        what = "offline event set" if sender.settings.api == OFFLINE_CONVERSIONS else "dataset"
        answer = sender.client.get(sender.settings.destination_id, {"fields": "id,name"})
        self.logger.info(
            "Connection test: the token reaches %s %s (%s); no event was sent.",
            what,
            answer.get("id"),
            answer.get("name") or "no name",
        )

    # -- messages --------------------------------------------------------------------------

    @override
    def _assert_line_requires(self, message_dict: dict, requires: set[str]) -> None:
        """Like the SDK's check, but the error names the missing keys, not the line."""
        missing = requires - set(message_dict)
        if missing:
            raise InvalidInputLine(
                f"A {message_dict.get('type', 'Singer')} message is missing its "
                f"{', '.join(sorted(missing))}: the tap's output is not valid Singer."
            )

    @override
    def _process_schema_message(self, message_dict: dict) -> None:
        self._assert_line_requires(message_dict, requires={"stream", "schema"})
        problem = schema_problem(message_dict["schema"])
        if problem:
            raise InvalidInputLine(
                f"The SCHEMA message of stream {str(message_dict['stream'])[:100]!r} {problem}: "
                "the tap's output is not valid Singer."
            )
        self._schema_read = message_dict["schema"]
        self._plain_sinks.clear()
        super()._process_schema_message(message_dict)

    @override
    def _process_activate_version_message(self, message_dict: dict) -> None:
        self._assert_line_requires(message_dict, requires={"stream", "version"})
        if message_dict["stream"] not in self.mapper.stream_maps:
            raise InvalidInputLine(
                f"An ACTIVATE_VERSION message for stream {str(message_dict['stream'])[:100]!r} "
                "came before its SCHEMA: the tap's output is not valid Singer."
            )
        super()._process_activate_version_message(message_dict)

    @override
    def _process_record_message(self, message_dict: dict) -> None:
        if "stream" not in message_dict or "record" not in message_dict:
            self._assert_line_requires(message_dict, requires={"stream", "record"})
        record = message_dict["record"]
        if type(record) is not dict:
            raise InvalidInputLine(
                f"A RECORD message of stream {str(message_dict['stream'])[:100]!r} holds "
                f"{type(record).__name__}, not a JSON object: the tap's output "
                "is not valid Singer."
            )
        self.record_seq += 1
        stream_name = message_dict["stream"]
        sink = self._plain_sinks.get(stream_name) if type(stream_name) is str else None
        if sink is None:
            sink = self._plain_sink(stream_name)
            if sink is None:
                super()._process_record_message(message_dict)
                return
        # The SDK's steps for a stream without stream maps (see ConversionsSink.take).
        sink.take(record)
        if sink.is_full:
            self.logger.info(
                "Target sink for '%s' is full. Current size is '%s'. Draining...",
                sink.stream_name,
                sink.current_size,
            )
            self.drain_one(sink)
        self._handle_max_record_age()

    def _plain_sink(self, stream_name: object) -> ConversionsSink | None:
        """The active sink of a stream whose records reach it unchanged (the SDK's default
        map, no flattening, no ``_sdc`` columns), remembered until the next SCHEMA message;
        ``None``: the SDK's own record handling is used."""
        maps = self.mapper.stream_maps.get(stream_name) if type(stream_name) is str else None
        if not maps or len(maps) != 1:
            return None
        only = maps[0]
        if type(only) is not SameRecordTransform or only.stream_alias != stream_name:
            return None
        if only.flattening_options and only.flattening_enabled:
            return None
        sink = self._sinks_active.get(stream_name)
        if not isinstance(sink, ConversionsSink) or sink.include_sdc_metadata_properties:
            return None
        self._plain_sinks[stream_name] = sink
        return sink

    @override
    def _process_state_message(self, message_dict: dict) -> None:
        self._assert_line_requires(message_dict, requires={"value"})
        state = message_dict["value"]
        self._latest_state = state  # the SDK's drains call _write_state_message when set
        self.state_gate.state_read(state, self.record_seq)

    def _batches_being_built(self) -> list[int]:
        """The first record of each sink's batch still being built (drained batches are held
        by the gate itself: :meth:`ConversionsSink.start_drain`)."""
        sinks = [*self._sinks_active.values(), *self._sinks_to_clear]
        return [
            first
            for sink in sinks
            if isinstance(sink, ConversionsSink) and (first := sink.first_unsent_seq) is not None
        ]

    @override
    def _write_state_message(self, state: dict) -> None:
        """The SDK's end-of-drain STATE: first wait for the batch in flight (or fail); then
        the gate, not the SDK's ``state``, decides which STATE goes out."""
        self.run.wait_all()
        self.state_gate.release()

    @override
    def process_endofpipe(self) -> None:
        super().process_endofpipe()
        self.run.wait_all()
        self.state_gate.release()
        if self._unconfirmed_command is not None:
            self._unconfirmed(self._unconfirmed_command)
        self._finish(failed=False)

    # -- unconfirmed Messenger sends -------------------------------------------------------

    def _unconfirmed(self, command: str) -> None:
        """``--list-unconfirmed`` (JSON lines on stdout) or ``--resend-unconfirmed``."""
        parts = self.run.messenger
        outbox = parts.events.outbox if parts is not None else None
        if parts is None or outbox is None:
            raise SettingProblem(
                f"--{command}-unconfirmed reads the ledger: set ledger to the "
                "ledger of the runs that sent the Messenger messages and events."
            )
        if command == "list":
            rows = outbox.unconfirmed()
            for row in rows:
                sys.stdout.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
            sys.stdout.flush()
            self.logger.info(
                "%d Messenger sends are unconfirmed (in flight when a run stopped).", len(rows)
            )
            return
        resend_unconfirmed(parts, outbox, self.logger)

    def _finish(self, *, failed: bool) -> None:
        """The summary, files closed; a replay's rejects file put in place (or dropped)."""
        self.run.finish(failed=failed)
        if self.replay is not None:
            self.logger.info("%s", self.replay.summary())
            self.replay.finish(failed=failed)

    # -- replay of a rejects file ----------------------------------------------------------

    def _start_replay(self, path: str) -> None:
        """Read the rejects file; rows that fail again go to a rejects file of their own (see
        :mod:`.replay`); the rebuilt records hold our column names, so no field_mapping."""
        self.replay = Replay.read(path, self.settings.api)
        self.run.progress.total_records = len(self.replay.records)  # the run's ETA is known
        self.run.rejects = self.replay.rejects_file(self.run.rejects.path)
        builder = self.run.builder
        builder.settings = dataclasses.replace(builder.settings, field_mapping={})

    @classmethod
    def _replayed_lines(cls) -> t.Iterator[str]:
        """The replay's Singer input, read once the target (and so the replay) exists."""
        current = cls._current
        if current is not None and current.replay is not None:
            yield from current.replay.singer_lines()

    # -- CLI -------------------------------------------------------------------------------

    @override
    @classmethod
    def get_singer_command(cls) -> click.Command:
        command = super().get_singer_command()
        for option, name, text in FLAGS:
            command.params.append(
                click.Option([option, name], is_flag=True, default=False, help=text)
            )
        command.params.append(
            click.Option(
                ["--replay-rejects", "replay_rejects"],
                type=click.STRING,
                default=None,
                help="Send the rows of this rejects file again with the current settings "
                "(once the cause of their rejection is fixed); no Singer input is read.",
            )
        )
        return command

    @override
    @classmethod
    def cb_config(cls, ctx: t.Any, param: t.Any, value: tuple[str, ...]) -> t.Any:
        """Read the ``--config`` files; an unreadable one is one sentence, not a traceback."""
        try:
            return super().cb_config(ctx, param, value)
        except (OSError, ValueError, TypeError) as exc:  # missing; not JSON; not an object
            if isinstance(exc, OSError):
                what = str(exc).strip().splitlines()[0].rstrip(".") or type(exc).__name__
            elif isinstance(exc, UnicodeDecodeError):
                what = "it is not UTF-8 text"
            elif (line := getattr(exc, "lineno", None)) is not None:  # where, never what
                what = f"it is not valid JSON (line {line}, column {getattr(exc, 'colno', '?')})"
            else:
                what = "it is not a JSON object"
            cls.logger.error("The --config file cannot be read: %s; fix it and run again.", what)
            sys.exit(1)

    @override
    @classmethod
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: t.Any = None,
        file_input: t.IO[str] | None = None,
        replay_rejects: str | None = None,
        list_unconfirmed: bool = False,
        resend_unconfirmed: bool = False,
        check_connection: bool = False,
        read_back: bool = False,
    ) -> None:
        """Run the target; a fatal error ends it with one sentence and the summary."""
        # Each record leaves a few dicts and lists alive until its batch is sent, so at the
        # default 700 the cyclic collector ran every few records and went through the whole
        # heap (SDK, SQLAlchemy) every few thousand: about a sixth of the run's CPU; at 10,000
        # it still went through each batch's events once (0.11 s per 30,000 records). Records
        # make no reference cycles, so collecting less often keeps memory flat (issue 12).
        gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
        sys.setswitchinterval(SWITCH_INTERVAL)
        if list_unconfirmed or resend_unconfirmed:
            cls._unconfirmed_command = "list" if list_unconfirmed else "resend"
            file_input = iter(())  # type: ignore[assignment]
        if check_connection:
            file_input = check_input()  # type: ignore[assignment]
        if read_back:
            file_input = read_back_input(cls)  # type: ignore[assignment]
        if replay_rejects is not None:
            cls._replay_path = replay_rejects
            file_input = cls._replayed_lines()  # type: ignore[assignment]
        try:
            super().invoke(
                about=about, about_format=about_format, config=config, file_input=file_input
            )
        except FATAL_ERRORS as exc:
            current = cls._current
            secrets: tuple[str, ...] = ()
            if current is not None:
                secrets = tuple(secrets_in(current.config))
                if getattr(current, "run", None) is not None:
                    current._finish(failed=True)
            message = str(exc.args[0]) if exc.args else type(exc).__name__
            if isinstance(exc, GraphError):
                message = exc.describe()
            if isinstance(exc, OSError):
                message = (
                    f"A file could not be written or read ({exc.strerror or 'error'}: "
                    f"{exc.filename or ''}): check rejects_path, dry_run_path and ledger."
                )
            cls.logger.error("%s", redact(message, secrets))
            sys.exit(1)


if __name__ == "__main__":
    TargetFbConversions.cli()
