"""The Messenger settings of the target (checked in :mod:`.settings`) turned into the parts a
run needs (:class:`~.messenger_sending.MessengerParts`)."""

from __future__ import annotations

import logging
import time
import typing as t
from collections.abc import Iterable
from typing import IO

from fb_graph.client import GraphClient
from fb_graph.spool import Spool, SpoolError
from target_fb_conversions.at_most_once import at_most_once_client
from target_fb_conversions.business_messaging import MessagingEventBuilder
from target_fb_conversions.events import EventBuilder
from target_fb_conversions.followups import WindowRule
from target_fb_conversions.ledger import Ledger
from target_fb_conversions.messenger_sending import (
    EventDelivery,
    FollowupDelivery,
    LastMessageTimes,
    MessengerCounts,
    MessengerParts,
)
from target_fb_conversions.outbox import Outbox
from target_fb_conversions.rejects import RejectsFile
from target_fb_conversions.sender import SendError, SenderSettings
from target_fb_conversions.settings import Settings


def spool_last_message_times(location: str) -> LastMessageTimes:
    """The receiver's spool as the source of each person's last message time (opened at the
    first follow-up batch; it is read, never written)."""
    spool: list[Spool] = []

    def times(pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
        try:
            if not spool:
                spool.append(Spool(location))
            return spool[0].last_user_message_times(pairs)
        except SpoolError as exc:
            raise SendError(
                f"{exc} Check the webhook_spool setting: the receiver's spool "
                "(SQLite path or SQLAlchemy URL)."
            ) from None

    return times


def make_messenger_parts(
    settings: Settings,
    *,
    events: EventBuilder,
    ledger: Ledger | None,
    sender_settings: SenderSettings,
    rejects: RejectsFile,
    logger: logging.Logger,
    dry_run_file: IO[str] | None,
) -> MessengerParts:
    """Builders, clients (at most once), the outbox and the deliveries, from the settings.

    Clients are made only when a call needs one (a run without Messenger records makes none).
    """
    clients: dict[str, GraphClient] = {}

    def client(token: str) -> GraphClient:
        if token not in clients:
            clients[token] = at_most_once_client(
                access_token=token,
                api_url=settings.api_url,
                api_version=settings.api_version,
                app_secret=settings.app_secret,
                transport=settings.transport,
                logger=logger,
                user_agent=settings.user_agent,
            )
        return clients[token]

    page_tokens = settings.page_access_tokens

    def client_for_page(page_id: str) -> GraphClient:
        return client(page_tokens.get(page_id) or settings.access_token)

    last_message_times = None
    if settings.webhook_spool is not None:
        last_message_times = spool_last_message_times(settings.webhook_spool)
    outbox = Outbox(ledger.engine) if ledger is not None else None
    counts = MessengerCounts()
    builder = MessagingEventBuilder(
        events,
        stage_events=settings.messenger_stage_mapping,
        datasets=settings.messenger_datasets,
        default_dataset=settings.dataset_id,
        warn=logger.warning,
    )

    class _LazyClient:
        """The dataset client, made at its first call."""

        def __getattr__(self, name: str) -> t.Any:
            return getattr(client(settings.access_token), name)

    event_delivery = EventDelivery(
        client=t.cast(GraphClient, _LazyClient()),
        outbox=outbox,
        settings=sender_settings,
        counts=counts,
        rejects=rejects,
        logger=logger,
        dry_run_file=dry_run_file,
    )
    followups = FollowupDelivery(
        client_for=client_for_page,
        outbox=outbox,
        rule=WindowRule(human_agent=settings.human_agent_followups, now=time.time),
        counts=counts,
        rejects=rejects,
        logger=logger,
        last_message_times=last_message_times,
        dry_run_file=dry_run_file,
    )

    def close() -> None:
        for one in clients.values():
            one.close()

    return MessengerParts(
        builder=builder,
        events=event_delivery,
        followups=followups,
        counts=counts,
        has_ledger=ledger is not None,
        close=close,
    )
