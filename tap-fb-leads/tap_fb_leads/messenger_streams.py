"""The Messenger Lead Ads streams: ``messenger_leads`` (one record per lead flow, from the
webhook spool, no Graph call) and ``messenger_conversations`` (each person's thread, read from
the Graph API; never selected by default)."""

from __future__ import annotations

import typing as t
from typing import Any

from singer_sdk.helpers.conform import TypeConformanceLevel
from typing_extensions import override

from fb_graph.spool import MESSENGER_READER, SpoolError
from tap_fb_leads.conversations import ConversationReader
from tap_fb_leads.messenger_flows import FlowReader, FormQuestions
from tap_fb_leads.schemas import MESSENGER_CONVERSATIONS_SCHEMA, MESSENGER_LEADS_SCHEMA
from tap_fb_leads.streams import GraphStream
from tap_fb_leads.webhooks import open_spool

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from singer_sdk.helpers.types import Context

    from tap_fb_leads.tap import TapFbLeads


class SpoolStream(GraphStream):
    """A stream whose STATE is its own (one dict, no partition, no replication key)."""

    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def _checkpoint(self) -> None:
        """Write a STATE now (the stream's state dict was changed in place)."""
        self.state_manager.is_flushed = False
        self._write_state_message()

    @override
    def _increment_stream_state(
        self, latest_record: dict, *, context: Context | None = None
    ) -> None:
        """Nothing per record: the position moves in :meth:`_checkpoint`."""

    @override
    def get_replication_key_signpost(self, context: Context | None = None) -> Any:
        return None


class MessengerLeadsStream(SpoolStream):
    """One record per Messenger lead flow, merged from the referral, the handover and the
    summary stored by fb-leads-receiver (:mod:`tap_fb_leads.messenger_flows`). Selected by
    default only when ``webhook_spool`` is set."""

    name = "messenger_leads"
    primary_keys = ("id",)
    replication_key = None
    schema_dict = MESSENGER_LEADS_SCHEMA

    def __init__(self, tap: TapFbLeads) -> None:
        self.selected_by_default = bool(tap.config.get("webhook_spool"))
        super().__init__(tap)

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        settings = self._run_tap.settings
        if settings.webhook_spool is None:
            self.logger.warning(
                "messenger_leads is selected but webhook_spool is not set: it reads the "
                "Messenger events fb-leads-receiver stores, so set webhook_spool to its spool."
            )
            return
        spool = open_spool(settings.webhook_spool)
        try:
            reader = FlowReader(
                spool,
                self.get_context_state(context),
                settings.page_ids,
                self.logger,
                questions=FormQuestions(self.run.client, self.logger),
            )
            yield from reader.records(self._checkpoint)
            try:
                spool.mark_read(reader.position, MESSENGER_READER)
            except SpoolError as exc:
                self.logger.warning(
                    "Could not record messenger_leads' position in the webhook spool (%s): "
                    "the receiver's status page and prune see an older one.",
                    exc,
                )
        finally:
            spool.close()


CONVERSATION_FIELDS = "participants,messages{message,created_time,from}"


class MessengerConversationsStream(SpoolStream):
    """Each person's Messenger thread with the Page: for every PSID with a new Messenger event
    in the spool, ``GET /{page_id}/conversations?platform=messenger&user_id=<PSID>`` through
    the run's client, paced per Page (:mod:`tap_fb_leads.conversations`). Never selected by
    default: it reads message texts and costs a call per person."""

    name = "messenger_conversations"
    primary_keys = ("id",)
    replication_key = None
    selected_by_default = False
    schema_dict = MESSENGER_CONVERSATIONS_SCHEMA

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        settings = self._run_tap.settings
        if settings.webhook_spool is None:
            self.logger.warning(
                "messenger_conversations is selected but webhook_spool is not set: it reads "
                "the threads of the people fb-leads-receiver has seen, so set webhook_spool."
            )
            return
        spool = open_spool(settings.webhook_spool)
        try:
            reader = ConversationReader(
                spool,
                self.run.client,
                self.get_context_state(context),
                settings.page_ids,
                settings.conversations_calls_per_second,
                self.logger,
            )
            yield from reader.records(self._checkpoint)
        finally:
            spool.close()
