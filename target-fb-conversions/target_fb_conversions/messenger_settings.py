"""The Messenger settings of the target: checked (one sentence per problem) and turned into
the parts a run needs (:class:`~.messenger_sending.MessengerParts`)."""

from __future__ import annotations

import logging
import time
import typing as t
from collections.abc import Callable, Iterable, Mapping
from typing import IO

from fb_graph import DEFAULT_API_URL, DEFAULT_API_VERSION
from fb_graph.client import GraphClient
from fb_graph.settings import read_transport
from fb_graph.spool import Spool, SpoolError
from target_fb_conversions.at_most_once import at_most_once_client
from target_fb_conversions.business_messaging import EVENT_NAMES, MessagingEventBuilder
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


def _digits(value: object) -> bool:
    return isinstance(value, str) and value.strip().isdigit()


def messenger_setting_problems(c: Mapping[str, t.Any]) -> list[str]:
    """What is wrong with the Messenger settings: one sentence each, never a token."""
    problems = []
    streams = c.get("followup_streams")
    if streams is not None and (
        not isinstance(streams, list) or not all(isinstance(s, str) and s for s in streams)
    ):
        problems.append(
            'followup_streams must be a list of stream names, e.g. ["messenger_followups"].'
        )
    for stage, name in (c.get("messenger_stage_mapping") or {}).items():
        if name not in EVENT_NAMES:
            problems.append(
                f"messenger_stage_mapping maps {stage!r} to {name!r}, which is not "
                f"a business-messaging event name ({', '.join(EVENT_NAMES)})."
            )
    for page, dataset in (c.get("messenger_datasets") or {}).items():
        if not _digits(page) or not _digits(dataset):
            problems.append(
                f"messenger_datasets maps {page!r} to {dataset!r}: both must be "
                "ids (digits), a Page id to its dataset id."
            )
    for page, token in (c.get("page_access_tokens") or {}).items():
        if not _digits(page):
            problems.append(
                f"page_access_tokens has the key {page!r}, which is not a Page id (digits)."
            )
        elif not isinstance(token, str) or not token.strip():
            problems.append(f"page_access_tokens has no token for Page {page}.")
    return problems


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
    c: Mapping[str, t.Any],
    *,
    events: EventBuilder,
    ledger: Ledger | None,
    sender_settings: SenderSettings,
    rejects: RejectsFile,
    logger: logging.Logger,
    user_agent: str,
    dry_run_file: IO[str] | None,
    now: Callable[[], float] = time.time,
    last_message_times: LastMessageTimes | None = None,
) -> MessengerParts:
    """Builders, clients (at most once), the outbox and the deliveries, from the settings.

    Clients are made only when a call needs one (a run without Messenger records makes none).
    """
    clients: dict[str, GraphClient] = {}

    def client(token: str) -> GraphClient:
        if token not in clients:
            clients[token] = at_most_once_client(
                access_token=token,
                api_url=c.get("api_url") or DEFAULT_API_URL,
                api_version=c.get("api_version") or DEFAULT_API_VERSION,
                app_secret=c.get("app_secret"),
                transport=read_transport(c),
                logger=logger,
                user_agent=user_agent,
            )
        return clients[token]

    page_tokens = {str(k): str(v) for k, v in (c.get("page_access_tokens") or {}).items()}

    def client_for_page(page_id: str) -> GraphClient:
        return client(page_tokens.get(page_id) or c["access_token"])

    if last_message_times is None and c.get("webhook_spool"):
        last_message_times = spool_last_message_times(str(c["webhook_spool"]))
    outbox = Outbox(ledger.engine) if ledger is not None else None
    counts = MessengerCounts()
    builder = MessagingEventBuilder(
        events,
        stage_events=c.get("messenger_stage_mapping") or {},
        datasets=c.get("messenger_datasets") or {},
        default_dataset=c.get("dataset_id"),
        warn=logger.warning,
    )

    class _LazyClient:
        """The dataset client, made at its first call."""

        def __getattr__(self, name: str) -> t.Any:
            return getattr(client(c["access_token"]), name)

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
        rule=WindowRule(human_agent=bool(c.get("human_agent_followups")), now=now),
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
