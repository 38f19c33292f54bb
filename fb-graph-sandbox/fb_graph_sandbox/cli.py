"""``fb-graph-sandbox``: run the Graph API sandbox as a process until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from fb_graph_sandbox.config import SandboxConfig
from fb_graph_sandbox.server import Sandbox


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The settings the data derives from (shared with ``fb-graph-sandbox export``)."""
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pages", type=int, default=1)
    parser.add_argument("--forms-per-page", type=int, default=3)
    parser.add_argument("--leads-per-form", type=int, default=1000)
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--now", type=int, default=None, help="Unix seconds (default: now)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fb-graph-sandbox",
        description="A local Graph API sandbox for Lead Ads and the Conversions API. Prints "
        "one JSON line with its url, token and dataset_id when ready. "
        "`fb-graph-sandbox export --help`: write its leads as export files instead.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    add_data_arguments(parser)
    parser.add_argument("--max-limit", type=int, default=1000)
    parser.add_argument("--order", choices=("newest", "shuffled"), default="newest")
    parser.add_argument("--app-secret", default=None)
    parser.add_argument("--call-budget", type=int, default=None)
    parser.add_argument("--block-minutes", type=float, default=1)
    parser.add_argument("--legacy-offline", action="store_true")
    parser.add_argument(
        "--webhook-url", default=None, help="POST signed leadgen webhooks here (every Page)"
    )
    parser.add_argument(
        "--webhook-secret",
        default=None,
        help="the app secret webhooks are signed with (default: --app-secret, else the "
        "sandbox's fixed one); unlike --app-secret it does not make appsecret_proof required",
    )
    parser.add_argument(
        "--webhook-retry-seconds", type=float, default=36 * 3600, help="give up after this"
    )
    parser.add_argument("--webhook-ids-as-numbers", action="store_true")
    parser.add_argument(
        "--webhook-fields",
        default="leadgen",
        help="comma-separated fields --webhook-url subscribes (e.g. "
        "leadgen,messages,messaging_handovers,messaging_referrals)",
    )
    parser.add_argument("--messenger-forms-per-page", type=int, default=0)
    parser.add_argument(
        "--messenger-flows-per-page", type=int, default=0, help="Messenger lead flows per Page"
    )
    parser.add_argument(
        "--messenger-days", type=float, default=2, help="generated flows end over these days"
    )
    parser.add_argument(
        "--no-webhook-verify",
        action="store_true",
        help="POST /{app_id}/subscriptions skips the callback handshake",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else list(argv)
    if given[:1] == ["export"]:
        from fb_graph_sandbox.export_cli import main as export_main

        return export_main(given[1:])
    args = _parser().parse_args(given)
    try:
        config = SandboxConfig(
            seed=args.seed,
            pages=args.pages,
            forms_per_page=args.forms_per_page,
            leads_per_form=args.leads_per_form,
            days=args.days,
            now=args.now,
            max_limit=args.max_limit,
            order=args.order,
            app_secret=args.app_secret,
            call_budget=args.call_budget,
            block_minutes=args.block_minutes,
            legacy_offline=args.legacy_offline,
            webhook_url=args.webhook_url,
            webhook_secret=args.webhook_secret,
            webhook_retry_seconds=args.webhook_retry_seconds,
            webhook_verify=not args.no_webhook_verify,
            webhook_options={"ids_as_numbers": args.webhook_ids_as_numbers},
            webhook_fields=tuple(f.strip() for f in args.webhook_fields.split(",") if f.strip()),
            messenger_forms_per_page=args.messenger_forms_per_page,
            messenger_flows_per_page=args.messenger_flows_per_page,
            messenger_days=args.messenger_days,
        )
    except ValueError as exc:
        print(f"fb-graph-sandbox: {exc}", file=sys.stderr)
        return 2
    try:
        sandbox = Sandbox(config, host=args.host, port=args.port)
    except OSError as exc:
        print(
            f"fb-graph-sandbox: cannot listen on {args.host}:{args.port} ({exc.strerror}); "
            "choose another --port.",
            file=sys.stderr,
        )
        return 2
    stop = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    ready = {
        "url": sandbox.url,
        "token": sandbox.token,
        "dataset_id": sandbox.dataset_id,
        "offline_event_set_id": sandbox.offline_event_set_id,
        "app_id": sandbox.app_id,
        "page_ids": sandbox.data.page_ids,
    }
    print(json.dumps(ready), flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sandbox.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
