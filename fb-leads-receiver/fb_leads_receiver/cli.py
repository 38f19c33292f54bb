"""The ``fb-leads-receiver`` command: ``serve`` Meta's leadgen webhooks, ``prune`` the spool.

Every failure a user can fix is one sentence on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys

from fb_graph.settings import SettingsError
from fb_leads_receiver import doctor, subscribe
from fb_leads_receiver.settings import ENV_PREFIX, load_settings

log = logging.getLogger("fb_leads_receiver")
SECONDS_PER_DAY = 86400


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fb-leads-receiver",
        description="Meta's leadgen webhooks, verified and stored durably before the 200, for "
        "tap-fb-leads to read. Settings come from --config (JSON) and from "
        f"{ENV_PREFIX}<NAME> environment variables, which win over the file.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "serve",
        help="answer webhooks until SIGTERM",
        description="Answer Meta's webhooks until SIGTERM. Prints one JSON line with the url "
        "and port on stdout once it serves.",
    )
    run.add_argument("--config", metavar="FILE", help="JSON file of settings")
    run.add_argument("--host", help="address to listen on (overrides the host setting)")
    run.add_argument("--port", type=int, help="port (overrides the port setting; 0: any free)")
    run.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    prune = commands.add_parser(
        "prune",
        help="delete spooled changes the tap has read",
        description="Delete the changes tap-fb-leads has read that are older than DAYS.",
    )
    prune.add_argument("--config", metavar="FILE", help="JSON file of settings")
    prune.add_argument("--older-than", metavar="DAYS", type=float, required=True)
    subscribe.add_parser(commands)
    doctor.add_parser(commands)
    return parser


def configure_logging(level: str) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(getattr(args, "log_level", "info"))
    # The database layer is imported only once the settings are known to be good (it takes
    # a second): a mistake in them is told at once.
    try:
        if args.command == "serve":
            settings, warnings = load_settings(
                args.config, overrides={"host": args.host, "port": args.port}
            )
            for warning in warnings:
                log.warning(warning)
            from fb_leads_receiver.server import serve

            return serve(settings, args.log_level)
        if args.command in ("subscribe", "doctor"):
            return (subscribe if args.command == "subscribe" else doctor).run(args)
        return _prune(args.config, args.older_than)
    except SettingsError as exc:
        print(f"fb-leads-receiver: {exc}", file=sys.stderr)
        return 2


def _prune(config: str | None, days: float) -> int:
    if not math.isfinite(days) or days < 0:
        raise SettingsError(f"--older-than must be a number of days of at least 0, not {days}.")
    settings, warnings = load_settings(config, need_secrets=False)
    for warning in warnings:
        log.warning(warning)
    import sqlalchemy as sa

    from fb_graph.spool import Spool, SpoolError

    try:
        spool = Spool(settings.spool)
        try:
            if spool.read_position() is None:
                print("Pruned 0 changes: tap-fb-leads has not read the spool yet.")
                return 0
            removed = spool.prune(days * SECONDS_PER_DAY)
        finally:
            spool.close()
    except SpoolError as exc:
        raise SettingsError(str(exc)) from None
    except sa.exc.SQLAlchemyError as exc:
        raise SettingsError(f"The spool could not be read ({type(exc).__name__}).") from None
    print(f"Pruned {removed} changes read by tap-fb-leads and older than {days:g} days.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
