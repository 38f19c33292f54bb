"""``fb-leads-receiver subscribe``: the app subscribed to ``leadgen`` (with the setting
``messenger`` or ``--messenger`` also ``messages``, ``messaging_referrals`` and
``messaging_handovers``) with this receiver's callback URL, and installed on each Page,
changing only what is missing.

App level: ``POST /{app_id}/subscriptions`` (object=page, fields=leadgen, include_values=true,
callback_url, verify_token) with the app token; Meta first calls the callback URL with the
handshake, so the receiver must be running there. Page level: ``POST /{page}/subscribed_apps``
with ``subscribed_fields`` (the fields already installed plus leadgen) and the Page token. An app
has one callback URL for all its Pages: a different one is replaced only with ``--replace``.
"""

from __future__ import annotations

import argparse

from fb_graph.errors import GraphError
from fb_leads_receiver.graph_setup import (
    Graph,
    Lines,
    Stop,
    app_fix,
    fix_for,
    graph,
    meta_said,
    need,
    page_ids,
    show_url,
    wanted_fields,
)
from fb_leads_receiver.settings import ReceiverSettings, load_settings

HANDSHAKE_FAILED = 2200
MANAGE_METADATA = "pages_manage_metadata"


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "subscribe",
        help="subscribe the app to leadgen webhooks and install it on each Page",
        description="Subscribe the app (object page, field leadgen, include_values, the "
        "callback URL and verify token) and install it on each Page of page_ids, changing "
        "only what is missing. The receiver must be running at the callback URL (Meta checks "
        "it with the handshake). Exit 0 when all is done, 1 when a step failed, 2 for a "
        "setting.",
    )
    parser.add_argument("--config", metavar="FILE", help="JSON file of settings")
    parser.add_argument(
        "--callback-url",
        metavar="URL",
        help="the receiver's public URL (overrides the callback_url setting)",
    )
    parser.add_argument(
        "--replace",
        action="store_true",
        help="replace the app's callback URL when it is a different one (an "
        "app has one for all its Pages), and write the subscription again",
    )
    parser.add_argument(
        "--messenger",
        action="store_true",
        help="also subscribe the Messenger fields messages, "
        "messaging_referrals and messaging_handovers (Messenger Lead Ads; the "
        "messenger setting does the same)",
    )


def run(args: argparse.Namespace) -> int:
    settings, _ = load_settings(
        args.config,
        overrides={
            "callback_url": args.callback_url,
            "messenger": True if args.messenger else None,
        },
    )
    return subscribe(settings, replace=args.replace)


def subscribe(settings: ReceiverSettings, *, replace: bool = False) -> int:
    """Both levels, one line per step; 0 when every step is done or was already."""
    need(settings, "app_id", "access_token", "callback_url", "page_ids")
    lines = Lines(settings)
    with graph(settings) as g:
        try:
            _app_level(g, lines, replace)
            for page_id in page_ids(settings):
                _page_level(g, lines, page_id)
        except Stop as stop:
            lines.fail(str(stop))
    return lines.exit_code


def _app_level(g: Graph, lines: Lines, replace: bool) -> None:
    settings = g.settings
    wanted = str(settings.callback_url)
    fields = wanted_fields(settings)
    step = f"app {settings.app_id} subscribed to {','.join(fields)} at {show_url(wanted)}"
    try:
        current = g.app_subscription()
    except GraphError as exc:
        lines.fail(f"{step}: its subscriptions could not be read: {app_fix(exc)}")
        return
    same_url = current is not None and current.callback_url == wanted
    if current is not None and current.callback_url and not same_url and not replace:
        lines.fail(
            f"{step}: the app sends its Page webhooks to {show_url(current.callback_url)} and "
            "an app has one callback URL for all its Pages: run subscribe again with "
            "--replace to send them here instead."
        )
        return
    has_all = current is not None and all(f in current.fields for f in fields)
    if current is not None and same_url and has_all and not replace:
        lines.ok(f"already: {step}")
        return
    try:
        g.app.post(
            f"{settings.app_id}/subscriptions",
            form={
                "object": "page",
                "callback_url": wanted,
                "fields": ",".join(fields),
                "include_values": "true",
                "verify_token": settings.verify_token,
            },
        )
    except GraphError as exc:
        if exc.code == HANDSHAKE_FAILED:
            lines.fail(
                f"{step}: Meta's handshake with the callback URL failed: check that "
                f"fb-leads-receiver serve runs at {show_url(wanted)}, reachable from the "
                f"internet, with the same verify_token {meta_said(exc)}."
            )
        else:
            lines.fail(f"{step}: {app_fix(exc)}.")
        return
    was = f" (was {show_url(current.callback_url)})" if current and not same_url else ""
    lines.ok(f"done: {step}, with include_values{was}")


def _page_level(g: Graph, lines: Lines, page_id: str) -> None:
    wanted = wanted_fields(g.settings)
    step = f"app installed on Page {page_id} with {','.join(wanted)}"
    try:
        fields = g.installed_fields(page_id)
        if fields is not None and all(f in fields for f in wanted):
            lines.ok(f"already: {step}")
            return
        keep = [f for f in fields or () if f not in wanted]
        g.page.post(
            f"{page_id}/subscribed_apps",
            form={"subscribed_fields": ",".join([*keep, *wanted])},
        )
    except GraphError as exc:
        lines.fail(f"{step}: {fix_for(exc, needs=MANAGE_METADATA)}.")
        return
    lines.ok(f"done: {step}")
