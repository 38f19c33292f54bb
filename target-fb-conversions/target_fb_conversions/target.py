"""target-fb-conversions: CRM lead-stage changes to hashed Conversions API events, each once."""

from __future__ import annotations

import dataclasses
import decimal
import gc
import json
import sys
import threading
import typing as t
from concurrent.futures import Future
from importlib import metadata
from pathlib import Path

import click
from singer_sdk import Target
from singer_sdk import typing as th
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

from fb_graph import DEFAULT_API_URL, DEFAULT_API_VERSION
from fb_graph.client import GraphClient
from fb_graph.errors import GraphError
from fb_graph.limits import (
    CAPI_MAX_AGE_DAYS,
    CAPI_MAX_EVENTS,
    OFFLINE_MAX_AGE_DAYS,
    OFFLINE_MAX_EVENTS,
)
from fb_graph.redact import redact
from fb_graph.settings import (
    TRANSPORT_PROPERTIES,
    SettingsError,
    read_transport,
    unknown_settings,
)
from target_fb_conversions import normalize
from target_fb_conversions.connection_test import (
    MELTANO_TEST_STREAM,
    ConnectionTestSink,
    check_input,
)
from target_fb_conversions.events import (
    CONVERSIONS_API,
    INPUT_COLUMNS,
    LIFECYCLE_STAGES,
    OFFLINE_CONVERSIONS,
    EventBuilder,
    EventSettings,
)
from target_fb_conversions.ledger import Ledger, LedgerError
from target_fb_conversions.messenger_sending import resend_unconfirmed
from target_fb_conversions.messenger_settings import (
    make_messenger_parts,
    messenger_setting_problems,
)
from target_fb_conversions.readback import read_back_input
from target_fb_conversions.reader import PrivateSingerReader
from target_fb_conversions.rejects import RejectsFile
from target_fb_conversions.replay import Replay, ReplayError
from target_fb_conversions.run import ConversionsRun, SettingProblem
from target_fb_conversions.sender import Sender, SendError, SenderSettings
from target_fb_conversions.sink import (
    ConversionsSink,
    FollowupSink,
    MessengerStageSink,
    has_psid_column,
    schema_problem,
)

NAME = "target-fb-conversions"
MAX_BATCH = {CONVERSIONS_API: CAPI_MAX_EVENTS, OFFLINE_CONVERSIONS: OFFLINE_MAX_EVENTS}
MAX_AGE_DAYS = {CONVERSIONS_API: CAPI_MAX_AGE_DAYS, OFFLINE_CONVERSIONS: OFFLINE_MAX_AGE_DAYS}
DEFAULT_REJECTS_PATH = "output/target-fb-conversions-rejects.jsonl"
DEFAULT_FOLLOWUP_STREAM = "messenger_followups"
# Container allocations between two collections of the youngest generation (Python: 700).
GC_THRESHOLD = 10_000

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


def _secrets(config: t.Mapping[str, t.Any]) -> list[str]:
    """Every token of the settings (cut out of any message)."""
    found = [config.get("access_token"), config.get("app_secret")]
    pages = config.get("page_access_tokens")
    if isinstance(pages, dict):
        found += list(pages.values())
    return [str(secret) for secret in found if secret not in (None, "")]


def _version() -> str:
    try:
        return metadata.version(NAME)
    except metadata.PackageNotFoundError:  # pragma: no cover - not installed
        return "0"


class TargetFbConversions(Target):
    """Sends one Conversions API CRM event per CRM stage change."""

    name = NAME
    default_sink_class = ConversionsSink
    message_reader_class = PrivateSingerReader

    config_jsonschema = th.PropertiesList(
        th.Property(
            "access_token",
            th.StringType,
            required=True,
            secret=True,
            description="Token with ads_management on the dataset (system user or "
            "Page token). Sent only in the Authorization header.",
        ),
        th.Property(
            "dataset_id",
            th.StringType,
            description="The CRM dataset (pixel) id, for api conversions_api.",
        ),
        th.Property(
            "api",
            th.StringType,
            default=CONVERSIONS_API,
            allowed_values=[CONVERSIONS_API, OFFLINE_CONVERSIONS],
            description="conversions_api (CRM events) or offline_conversions (the "
            "legacy Offline Conversions format, shut down by Meta in May 2025).",
        ),
        th.Property(
            "offline_event_set_id",
            th.StringType,
            description="The offline event set id, for api offline_conversions.",
        ),
        th.Property(
            "upload_tag",
            th.StringType,
            description="Tag of the uploads, for api offline_conversions.",
        ),
        th.Property(
            "api_url",
            th.StringType,
            default=DEFAULT_API_URL,
            description="Graph API base URL (the sandbox's URL in tests).",
        ),
        th.Property(
            "api_version",
            th.StringType,
            default=DEFAULT_API_VERSION,
            description="Graph API version.",
        ),
        th.Property(
            "app_secret",
            th.StringType,
            secret=True,
            description="App secret: when set, every call carries appsecret_proof.",
        ),
        th.Property(
            "lead_event_source",
            th.StringType,
            description="The CRM's name (HubSpot, Salesforce, ...) when a record "
            "carries none; a record with neither stops the run.",
        ),
        th.Property(
            "stage_mapping",
            th.ObjectType(additional_properties=th.StringType),
            description="CRM stage -> one of " + ", ".join(LIFECYCLE_STAGES) + "; "
            "unmapped stages become NOT_ASSIGNED with one warning per stage.",
        ),
        th.Property(
            "strict_stage_mapping",
            th.BooleanType,
            default=False,
            description="Stop the run at a record whose stage is not in "
            "stage_mapping instead of sending it as NOT_ASSIGNED.",
        ),
        th.Property(
            "field_mapping",
            th.ObjectType(additional_properties=th.StringType),
            description="Input column -> target column ("
            + ", ".join(INPUT_COLUMNS)
            + '), e.g. {"hs_email": "email"}.',
        ),
        th.Property(
            "default_phone_country",
            th.StringType,
            description="ISO country (e.g. US) for phones written without a country "
            "code, when the record has no country.",
        ),
        th.Property(
            "hash_external_id",
            th.BooleanType,
            default=True,
            description="Hash external_id (SHA-256) before sending.",
        ),
        th.Property(
            "test_event_code",
            th.StringType,
            description="Passed through to Meta's Test Events tab (not a dry run: "
            "Meta keeps test events).",
        ),
        th.Property(
            "dry_run",
            th.BooleanType,
            default=False,
            description="Validate, normalise, hash and build every request, send "
            "nothing, write the exact request bodies to dry_run_path; no STATE.",
        ),
        th.Property(
            "dry_run_path",
            th.StringType,
            description="JSON Lines file for the request bodies of a dry run.",
        ),
        th.Property(
            "batch_size",
            th.IntegerType,
            description="Events per call: default and maximum 1000 (2000 for offline_conversions).",
        ),
        th.Property(
            "max_event_age_days",
            th.NumberType,
            description="Older events are rejected locally: default 7 (62 for "
            "offline_conversions).",
        ),
        th.Property(
            "rejects_path",
            th.StringType,
            default=DEFAULT_REJECTS_PATH,
            description="JSON Lines file for records that cannot be sent, each with "
            "its reason (hashes only, no raw email or phone).",
        ),
        th.Property(
            "ledger",
            th.StringType,
            description="SQLite path or SQLAlchemy URL of a record of acknowledged "
            "event_ids, so reruns never resend.",
        ),
        th.Property(
            "partner_agent",
            th.StringType,
            description=f"Sent as partner_agent; default {NAME}/<version>.",
        ),
        th.Property(
            "followup_streams",
            th.ArrayType(th.StringType),
            default=[DEFAULT_FOLLOWUP_STREAM],
            description="Streams whose records are Messenger follow-up messages "
            "(page_id, psid, text, last_user_message_at, message_id), sent with the "
            "Send API inside Meta's messaging window, once (needs ledger).",
        ),
        th.Property(
            "human_agent_followups",
            th.BooleanType,
            default=False,
            description="Send follow-ups 24 hours to 7 days after the person's last "
            "message with the HUMAN_AGENT tag: needs Meta's approval of the tag, and "
            "only for a human's reply, never automated or promotional text.",
        ),
        th.Property(
            "page_access_tokens",
            th.ObjectType(additional_properties=th.StringType),
            secret=True,
            description="Page id -> Page access token (MESSAGING task, "
            "pages_messaging) for the Send API; a Page not listed uses access_token.",
        ),
        th.Property(
            "webhook_spool",
            th.StringType,
            description="The webhook receiver's spool (SQLite path or SQLAlchemy URL): "
            "a person's last message there, when later than the record's "
            "last_user_message_at, opens the messaging window; read only.",
        ),
        th.Property(
            "messenger_stage_mapping",
            th.ObjectType(additional_properties=th.StringType),
            description="CRM stage -> business-messaging event name (LeadSubmitted, "
            "QualifiedLead, Purchase, ...) for Messenger leads (psid and page_id, no "
            "lead_id); default: stage_mapping's LEAD -> LeadSubmitted, "
            "MARKETING_QUALIFIED_LEAD -> QualifiedLead, CONVERTED -> Purchase, other "
            "stages not sent.",
        ),
        th.Property(
            "messenger_datasets",
            th.ObjectType(additional_properties=th.StringType),
            description="Page id -> the Page's dataset id for business-messaging "
            "events; when unset every Page's events go to dataset_id, when set a "
            "Page not listed stops the run.",
        ),
    ).to_dict()
    config_jsonschema["properties"].update(TRANSPORT_PROPERTIES)

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        self.state_lock = threading.RLock()
        self.record_seq = 0
        self._queued_states: list[tuple[int, dict]] = []
        # Drained batches Meta has not yet acknowledged (or that failed: those stay for good).
        self._unsettled: list[tuple[int, Future]] = []
        self._last_written_state: str | None = None
        self.replay: Replay | None = None
        self._schema_read: dict = {}
        # Stream -> its sink, for streams whose records need none of the SDK's mapping.
        self._plain_sinks: dict[str, ConversionsSink] = {}
        super().__init__(*args, **kwargs)
        TargetFbConversions._current = self
        self.run = self._make_run()
        self.run.column_streak_limit = self.batch_size
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
    def api(self) -> str:
        return self.config.get("api") or CONVERSIONS_API

    @property
    def batch_size(self) -> int:
        return int(self.config.get("batch_size") or MAX_BATCH[self.api])

    @override
    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """The SDK's schema check (with secrets cut out of its messages) plus ours."""
        errors = super()._validate_config(raise_errors=False)
        secrets = [str(secret) for secret in _secrets(self._config) if secret]
        errors = [redact(error, secrets) for error in errors]
        if not errors:
            errors = self._setting_problems()
        for warning in unknown_settings(self._config, self.config_jsonschema["properties"]):
            self.logger.warning("%s", warning)
        if errors and raise_errors:
            raise ConfigValidationError(
                "Config validation failed", errors=errors, schema=self.config_jsonschema
            )
        return errors

    def _setting_problems(self) -> list[str]:
        c = self.config
        api = c.get("api") or CONVERSIONS_API
        problems = []
        if api == CONVERSIONS_API and not c.get("dataset_id"):
            problems.append(
                "dataset_id is required for api conversions_api: set it to the "
                "CRM dataset (pixel) id."
            )
        if api == OFFLINE_CONVERSIONS:
            if not c.get("offline_event_set_id"):
                problems.append("offline_event_set_id is required for api offline_conversions.")
            if not c.get("upload_tag"):
                problems.append("upload_tag is required for api offline_conversions.")
        if api in MAX_BATCH and c.get("batch_size") is not None:
            size = c.get("batch_size")
            if not isinstance(size, int) or not 1 <= size <= MAX_BATCH[api]:
                problems.append(f"batch_size must be between 1 and {MAX_BATCH[api]} for {api}.")
        age = c.get("max_event_age_days")
        number = (int, float, decimal.Decimal)
        if age is not None and (not isinstance(age, number) or isinstance(age, bool) or age <= 0):
            problems.append("max_event_age_days must be a positive number of days.")
        try:
            read_transport(c)
        except SettingsError as exc:
            problems.append(str(exc))
        for stage, lifecycle in (c.get("stage_mapping") or {}).items():
            if lifecycle not in LIFECYCLE_STAGES:
                problems.append(
                    f"stage_mapping maps {stage!r} to {lifecycle!r}, which is not "
                    f"one of {', '.join(LIFECYCLE_STAGES)}."
                )
        for source, column in (c.get("field_mapping") or {}).items():
            if column not in INPUT_COLUMNS:
                problems.append(
                    f"field_mapping maps {source!r} to {column!r}, which is not one "
                    f"of the input columns {', '.join(INPUT_COLUMNS)}."
                )
        country = c.get("default_phone_country")
        if country:
            try:
                normalize.country(country)
            except normalize.NormalizeError:
                problems.append("default_phone_country is not an ISO country code such as US.")
        if c.get("dry_run") and not c.get("dry_run_path"):
            problems.append("dry_run needs dry_run_path: the file for the request bodies.")
        problems += messenger_setting_problems(c)
        return problems

    def _make_run(self) -> ConversionsRun:
        c = self.config
        api = self.api
        max_age = c.get("max_event_age_days") or MAX_AGE_DAYS[api]
        if max_age > MAX_AGE_DAYS[api]:
            self.logger.warning(
                "max_event_age_days %s is above Meta's limit of %d days for %s: "
                "Meta will refuse the older events.",
                max_age,
                MAX_AGE_DAYS[api],
                api,
            )
        country = c.get("default_phone_country")
        if not c.get("lead_event_source"):
            self.logger.warning(
                "lead_event_source is not set: a record without its own "
                "lead_event_source will stop the run."
            )
        builder = EventBuilder(
            EventSettings(
                api=api,
                lead_event_source=c.get("lead_event_source"),
                stage_mapping=c.get("stage_mapping") or {},
                strict_stage_mapping=bool(c.get("strict_stage_mapping")),
                default_phone_country=normalize.country(country) if country else None,
                hash_external_id=c.get("hash_external_id", True) is not False,
                max_event_age_days=float(max_age),
                field_mapping=c.get("field_mapping") or {},
            ),
            warn=self.logger.warning,
        )
        destination = (
            c.get("offline_event_set_id") if api == OFFLINE_CONVERSIONS else c.get("dataset_id")
        )
        dry_run_file = None
        if c.get("dry_run"):
            path = Path(c["dry_run_path"]).expanduser()
            path.parent.mkdir(parents=True, exist_ok=True)
            dry_run_file = path.open("w", encoding="utf-8")
        sender = Sender(
            SenderSettings(
                destination_id=str(destination),
                api=api,
                upload_tag=c.get("upload_tag"),
                partner_agent=c.get("partner_agent") or f"{NAME}/{_version()}",
                test_event_code=c.get("test_event_code"),
            ),
            client=GraphClient(
                access_token=c["access_token"],
                api_url=c.get("api_url") or DEFAULT_API_URL,
                api_version=c.get("api_version") or DEFAULT_API_VERSION,
                app_secret=c.get("app_secret"),
                transport=read_transport(c),
                logger=self.logger,
                user_agent=f"{NAME}/{_version()}",
            ),
            logger=self.logger,
            dry_run_file=dry_run_file,
        )
        ledger = Ledger(c["ledger"], str(destination)) if c.get("ledger") else None
        rejects = RejectsFile(c.get("rejects_path") or DEFAULT_REJECTS_PATH)
        messenger = make_messenger_parts(
            c,
            events=builder,
            ledger=ledger,
            sender_settings=sender.settings,
            rejects=rejects,
            logger=self.logger,
            user_agent=f"{NAME}/{_version()}",
            dry_run_file=dry_run_file,
        )
        return ConversionsRun(
            builder=builder,
            sender=sender,
            rejects=rejects,
            ledger=ledger,
            logger=self.logger,
            dry_run_file=dry_run_file,
            messenger=messenger,
        )

    # -- sinks -----------------------------------------------------------------------------

    @override
    def get_sink_class(self, stream_name: str) -> type[Sink]:
        """The sink class by the stream's name and schema (the SCHEMA message being read):
        follow-up streams, CRM streams with a ``psid`` column, the others (see :mod:`.sink`)."""
        if stream_name == MELTANO_TEST_STREAM:
            return ConnectionTestSink
        if stream_name in (self.config.get("followup_streams") or [DEFAULT_FOLLOWUP_STREAM]):
            return FollowupSink
        if has_psid_column(self._schema_read, self.config.get("field_mapping") or {}):
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
        with self.state_lock:
            self._latest_state = state
            self._queued_states.append((self.record_seq, state))
        self.batch_settled()

    def hold_states_from(self, first_seq: int) -> Future:
        """Hold back every STATE read after record ``first_seq`` until the returned future
        is resolved; an exception set on it holds them back for the rest of the run."""
        settled: Future = Future()
        with self.state_lock:
            self._unsettled.append((first_seq, settled))
        settled.add_done_callback(lambda _done: self.batch_settled())
        return settled

    def batch_settled(self) -> None:
        """Let through the newest STATE whose records are all acknowledged or rejected.

        Never waits: it runs on the sending thread too (a batch's done-callback).
        """
        with self.state_lock:
            self._unsettled = [
                (seq, fut)
                for seq, fut in self._unsettled
                if not fut.done() or fut.exception() is not None  # done: exception() is instant
            ]
            pending = [seq for seq, _ in self._unsettled]
            sinks = list(self._sinks_active.values()) + list(self._sinks_to_clear)
            pending += [
                seq
                for sink in sinks
                if isinstance(sink, ConversionsSink) and (seq := sink.first_unsent_seq) is not None
            ]
            bound = min(pending) if pending else None
            ready = [
                (seq, state) for seq, state in self._queued_states if bound is None or seq < bound
            ]
            if not ready:
                return
            self._queued_states = self._queued_states[len(ready) :]
            self._emit_state(ready[-1][1])

    @override
    def _write_state_message(self, state: dict) -> None:
        """The SDK's end-of-drain STATE: first wait for the batch in flight (or fail)."""
        self.run.wait_all()
        self.batch_settled()

    def _emit_state(self, state: dict) -> None:
        if self.config.get("dry_run"):
            return  # nothing was sent, so nothing may be acknowledged upstream
        text = json.dumps(state)
        with self.state_lock:
            if text == self._last_written_state:
                return
            self._last_written_state = text
            sys.stdout.write(text + "\n")
            sys.stdout.flush()

    @override
    def process_endofpipe(self) -> None:
        super().process_endofpipe()
        self.run.wait_all()
        self.batch_settled()
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
        self.replay = Replay.read(path, self.api)
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
        command.params.append(
            click.Option(
                ["--list-unconfirmed", "list_unconfirmed"],
                is_flag=True,
                default=False,
                help="Print (JSON lines) the Messenger messages and business-messaging events "
                "the ledger holds in flight: sent when a run stopped, Meta's answer unknown. "
                "No Singer input is read.",
            )
        )
        command.params.append(
            click.Option(
                ["--resend-unconfirmed", "resend_unconfirmed"],
                is_flag=True,
                default=False,
                help="Once checked that Meta does not have them, send the business-messaging "
                "events the ledger holds in flight again (at most once); unconfirmed messages "
                "are dropped from the ledger (their text is not kept). No Singer input is read.",
            )
        )
        command.params.append(
            click.Option(
                ["--check-connection", "check_connection"],
                is_flag=True,
                default=False,
                help="Check the token and the dataset (or offline event set) with one harmless "
                "call, GET /{id}?fields=id,name; nothing is sent. No Singer input is read.",
            )
        )
        command.params.append(
            click.Option(
                ["--read-back", "read_back"],
                is_flag=True,
                default=False,
                help="Print what Meta made of the events of the last 7 days (the dataset's "
                "stats and data quality) next to what the ledger holds as sent. No Singer input.",
            )
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
        # heap (SDK, SQLAlchemy) every few thousand: about a sixth of the run's CPU. Records
        # make no reference cycles, so collecting less often keeps memory flat (issue 12).
        gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
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
                secrets = tuple(_secrets(current.config))
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
