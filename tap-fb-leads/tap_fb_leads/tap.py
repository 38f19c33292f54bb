"""tap-fb-leads: Meta Lead Ads forms, leads and disclaimer responses, as a Singer tap."""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import io
import json
import os
import sys
import typing as t
from collections.abc import Iterator

from singer_sdk import Stream, Tap
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.capabilities import CapabilitiesEnum, PluginCapabilities
from typing_extensions import override

from fb_graph.errors import GraphError
from fb_graph.redact import redact
from fb_graph.settings import unknown_settings
from tap_fb_leads.discovery import discovered_answers
from tap_fb_leads.export_files import ExportFile, find_files
from tap_fb_leads.export_leads import ENDPOINT_CONTEXT, FILES_CONTEXT, check_file
from tap_fb_leads.failures import RUN_FAILURES, AppSecretRejected
from tap_fb_leads.messenger_streams import (
    MessengerConversationsStream,
    MessengerLeadsStream,
)
from tap_fb_leads.output import BufferedSingerWriter
from tap_fb_leads.questions import declared_answers
from tap_fb_leads.run import GraphRun
from tap_fb_leads.schemas import leads_schema
from tap_fb_leads.settings import (
    CONFIG_SCHEMA,
    RETENTION_DAYS,
    Settings,
    SettingsError,
    read_settings,
)
from tap_fb_leads.streams import (
    AdDisclaimerResponsesStream,
    AdLeadsStream,
    DisclaimerResponsesStream,
    FormsStream,
    LeadsStream,
)
from tap_fb_leads.webhooks import WEBHOOKS_CONTEXT


class TapFbLeads(Tap):
    """Reads a Page's lead forms, their leads and the leads' disclaimer answers."""

    name = "tap-fb-leads"
    config_jsonschema = CONFIG_SCHEMA
    # No BATCH: disclaimer responses are written as records from the leads pages.
    message_writer_class = BufferedSingerWriter
    capabilities: t.ClassVar[list[CapabilitiesEnum]] = [
        capability for capability in Tap.capabilities if capability != PluginCapabilities.BATCH
    ]
    # The catalog holds the forms' questions: --discover needs a valid config.
    dynamic_catalog = True

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        self.started_at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        self._settings: Settings | None = None
        self._graph: GraphRun | None = None
        self._discovering = False
        self.export_files: list[ExportFile] = []
        """The files of ``export_files`` (found, hashed and checked when the run starts)."""
        self._export_files_checked = False
        super().__init__(*args, **kwargs)

    # Settings

    @override
    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        try:
            settings = read_settings(self._config, self.started_at)
        except SettingsError as exc:
            if raise_errors:
                raise ConfigValidationError(str(exc), errors=[str(exc)]) from None
            self.logger.warning("%s", exc)
            return [str(exc)]
        self._settings = settings
        self.append_builtin_config(self.config_jsonschema)  # the SDK's settings are known too
        for problem in unknown_settings(self._config, self.config_jsonschema["properties"]):
            self.logger.warning("%s", problem)
        # Normalised values, so the SDK (bookmarks, --about) sees what the run uses.
        self._config["page_ids"] = list(settings.page_ids)
        if settings.form_ids is not None:
            self._config["form_ids"] = sorted(settings.form_ids)
        if settings.ad_ids:
            self._config["ad_ids"] = list(settings.ad_ids)
        self._config["start_date"] = settings.start_date.isoformat()
        oldest_kept = self.started_at - dt.timedelta(days=RETENTION_DAYS)
        if not settings.start_date_defaulted and settings.start_date < oldest_kept:
            self.logger.warning(
                "start_date %s is more than %d days ago: Meta keeps leads for about %d "
                "days, so older leads are probably gone.",
                settings.start_date.isoformat(),
                RETENTION_DAYS,
                RETENTION_DAYS,
            )
        return super()._validate_config(raise_errors=raise_errors)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = read_settings(self._config, self.started_at)
        return self._settings

    @property
    def graph(self) -> GraphRun:
        """The run's Graph client and pagers (built on first use)."""
        if self._graph is None:
            self._graph = GraphRun(self, self.settings, self.started_at, self.logger)
        return self._graph

    # Streams

    @override
    def discover_streams(self) -> list[Stream]:
        messenger: list[Stream] = [
            MessengerLeadsStream(self),
            MessengerConversationsStream(self),
        ]
        leads = leads_schema(self._answers())
        if self.config.get("ad_ids"):
            return [
                FormsStream(self),
                AdLeadsStream(self, leads),
                AdDisclaimerResponsesStream(self),
                *messenger,
            ]
        return [
            FormsStream(self),
            LeadsStream(self, leads),
            DisclaimerResponsesStream(self),
            *messenger,
        ]

    def _answers(self) -> dict[str, t.Any] | None:
        """The ``answers`` property of the leads schema: the catalog's when one is given
        (its forms are not read again), else the forms' questions read now (with
        ``--discover``, or when the run polls the forms: see :mod:`tap_fb_leads.discovery`);
        None leaves ``answers`` without declared questions."""
        catalog = self.input_catalog
        if catalog is not None:
            entry = catalog.get_stream("leads")
            return declared_answers(entry.schema.to_dict()) if entry is not None else None
        if not (self._discovering or self.settings.poll_forms):
            return None  # the webhook spool only: no Graph call when nothing is new
        if not self._discovering:
            self._check_export_files()  # a run checks its files before any Graph call
        separator = None
        if self.config.get("flattening_enabled"):
            separator = str(self.config.get("flattening_separator") or "__")
        return discovered_answers(
            self.graph, self.logger, discover=self._discovering, separator=separator
        )

    @override
    def run_discovery(self) -> str:
        self._discovering = True  # before the streams are made (cb_discover makes them here)
        return super().run_discovery()

    # The SDK marks sync_all final; the tap still wraps it, to read the export files before
    # the API's leads and the webhook spool after them, as partitions of the leads stream.
    @override  # type: ignore[misc]
    def sync_all(self) -> None:
        try:
            self._sync_exports()
            super().sync_all()
            self.graph.progress.finish()
            self._sync_webhook_leads()
        except GraphError as exc:
            if "appsecret_proof" not in exc.message:
                raise
            raise AppSecretRejected(exc, self.settings.app_secret is not None) from exc

    def _sync_exports(self) -> None:
        """Before the API's leads (whose version of a lead then comes last in a run): the
        leads of ``export_files`` and of ``export_url``, as the ``leads`` partitions
        ``{"source": "export_files"}`` and ``{"source": "export_csv"}``. Every file is found,
        hashed and its header checked first: a configured file that cannot be read stops
        the run before anything is emitted or called."""
        settings = self.settings
        if not settings.export_files and settings.export_url is None:
            return
        leads = self.streams["leads"]
        if not leads.selected:
            self.logger.warning("export_files and export_url are read only when leads is selected.")
            return
        if settings.export_files:
            self._check_export_files()
            leads.sync(dict(FILES_CONTEXT))
        if settings.export_url is not None:
            leads.sync(dict(ENDPOINT_CONTEXT))

    def _check_export_files(self) -> None:
        """Find, hash and check every file of ``export_files`` (once): a configured file that
        cannot be read stops the run before anything is emitted or called."""
        if self._export_files_checked:
            return
        self.export_files = find_files(self.settings.export_files)
        for export in self.export_files:
            check_file(export)
        self._export_files_checked = True

    def _sync_webhook_leads(self) -> None:
        """After the poll (whose leads the spool then need not read again): the leads
        announced in ``webhook_spool``, as the ``leads`` partition ``{"source": "webhooks"}``."""
        if self.settings.webhook_spool is None:
            return
        leads = self.streams["leads"]
        if not (leads.selected or leads.has_selected_descendents):
            return
        leads.sync(dict(WEBHOOKS_CONTEXT))

    # Command line

    @override
    @classmethod
    def cb_config(cls, ctx: t.Any, param: t.Any, value: tuple[str, ...]) -> t.Any:
        """Read the ``--config`` files; an unreadable one is one sentence, not a traceback."""
        try:
            return super().cb_config(ctx, param, value)
        except (OSError, ValueError, TypeError) as exc:  # missing; not JSON; not an object
            cls.logger.error(
                "Could not read the --config file: %s. Fix the file and run again.",
                "it is not a JSON object" if isinstance(exc, TypeError) else _first_line(exc),
            )
            sys.exit(1)

    @override
    @classmethod
    def invoke(cls, *args: t.Any, **kwargs: t.Any) -> None:
        """Run the tap; a Graph or quota failure ends it with one sentence, no traceback."""
        _tune_garbage_collector()
        for option in ("state", "catalog"):
            if kwargs.get(option) is not None:
                kwargs[option] = _checked_json_file(kwargs[option], option)
        with _told_failures():
            super().invoke(*args, **kwargs)

    @override
    @classmethod
    def cb_discover(cls, ctx: t.Any, param: t.Any, value: bool) -> None:
        """``--discover`` reads the forms' questions: a failure is one sentence too."""
        with _told_failures():
            super().cb_discover(ctx, param, value)


@contextlib.contextmanager
def _told_failures() -> Iterator[None]:
    """End the process with the failure's own sentence (no traceback, no token)."""
    logger = TapFbLeads.logger
    try:
        yield
    except RUN_FAILURES as exc:
        logger.error("%s", redact(exc))
        sys.exit(1)
    except SettingsError as exc:
        logger.error("%s", exc)
        sys.exit(1)
    except BrokenPipeError:
        # Whatever read our output (a loader) stopped first; its own error says why.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        logger.error(
            "The program reading tap-fb-leads' output (the loader) stopped before the end: "
            "see its own error; the next run resumes from the last STATE it stored."
        )
        sys.exit(1)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0].rstrip(".") if str(exc).strip() else type(exc).__name__


def _checked_json_file(file: t.IO[str], option: str) -> t.IO[str]:
    """The ``--state``/``--catalog`` file, refused in one sentence when it is not a JSON
    object (an empty or cut state file is the usual cause: a run killed while writing it)."""
    text = file.read()
    try:
        value = json.loads(text)
    except ValueError as exc:
        value = exc
    if not isinstance(value, dict):
        problem = _first_line(value) if isinstance(value, ValueError) else "not an object"
        remedy = (
            "restore it from the last STATE message of a run, or leave it out to read from "
            "start_date again"
            if option == "state"
            else "write it again from --discover, or leave it out to read every stream"
        )
        TapFbLeads.logger.error(
            "The --%s file %s is not a valid JSON object (%s): %s.",
            option,
            getattr(file, "name", ""),
            problem,
            remedy,
        )
        sys.exit(1)
    return io.StringIO(text)


def _tune_garbage_collector() -> None:
    """Collect cycles less often: a run allocates millions of short-lived, acyclic dicts
    and lists (decoded leads), for which the default thresholds mostly scan in vain (about
    15 % of the run's CPU). What is loaded before the run is frozen out of the scans."""
    gc.freeze()
    gc.set_threshold(100_000, 50, 1_000)


if __name__ == "__main__":
    TapFbLeads.cli()
