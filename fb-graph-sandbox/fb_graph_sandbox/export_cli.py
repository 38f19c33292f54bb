"""``fb-graph-sandbox export PATH``: write the sandbox's leads as a lead export file.

Prints one JSON line: the path, format, rows, columns, the data settings (so a server started
with the same ``--seed``/``--now``/sizes serves the same leads), seconds and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone

from fb_graph_sandbox import exports
from fb_graph_sandbox.cli import add_data_arguments
from fb_graph_sandbox.config import SandboxConfig

PROG = "fb-graph-sandbox export"


def _unix_or_iso(text: str) -> int:
    """Unix seconds, or an ISO 8601 date or time (UTC when it has no offset)."""
    value = text.strip()
    if value.lstrip("-").isdigit():
        return int(value)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not Unix seconds nor an ISO date: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Write the sandbox's leads (same seed and sizes -> the same leads the "
        "Graph API serves) as an export file like Ads Manager's. Rows are written as they "
        "are made: memory stays flat for any size.",
    )
    parser.add_argument("path", help="the file to write")
    add_data_arguments(parser)
    parser.add_argument("--format", choices=exports.FORMATS, default=exports.DEFAULT_FORMAT)
    parser.add_argument(
        "--delimiter", choices=tuple(exports.DELIMITERS), help="text formats: override"
    )
    parser.add_argument(
        "--utc-offset",
        default=exports.DEFAULT_UTC_OFFSET,
        help="created_time's local offset; write negative ones as --utc-offset=-07:00",
    )
    parser.add_argument(
        "--is-organic", choices=tuple(exports.ORGANIC_STYLES), default="10", dest="organic",
        help="1/0 (10), TRUE/FALSE or true/false",
    )  # fmt: skip
    parser.add_argument("--forms", help="comma-separated form ids or numbers (1 = first form)")
    parser.add_argument("--since", type=_unix_or_iso, help="created at or after (Unix or ISO)")
    parser.add_argument("--until", type=_unix_or_iso, help="created at or before (Unix or ISO)")
    parser.add_argument("--limit", type=int, help="rows at most")
    parser.add_argument(
        "--leads",
        type=int,
        help="exactly N rows (streaming): sizes --leads-per-form so the chosen forms hold N",
    )
    parser.add_argument("--inbox-url", action="store_true", help="add the inbox_url column")
    parser.add_argument(
        "--lead-status", default="CREATED", help="CREATED, complete, a stage, or mixed"
    )
    parser.add_argument("--bad-id-row", type=int, action="append", default=[], metavar="N")
    parser.add_argument("--bad-date-row", type=int, action="append", default=[], metavar="N")
    parser.add_argument("--unknown-header", action="append", default=[], metavar="NAME")
    return parser


def _config(args: argparse.Namespace, forms: tuple[str, ...] | None) -> SandboxConfig:
    config = SandboxConfig(
        seed=args.seed,
        pages=args.pages,
        forms_per_page=args.forms_per_page,
        leads_per_form=args.leads_per_form,
        days=args.days,
        now=args.now if args.now is not None else int(time.time()),
    )
    if args.leads is not None:
        if args.leads < 0:
            raise ValueError("--leads must be 0 or more.")
        config = exports.sized_config(config, args.leads, forms)
    return config


def _options(args: argparse.Namespace, forms: tuple[str, ...] | None) -> exports.ExportOptions:
    limit = args.leads if args.leads is not None else args.limit
    if args.leads is not None and args.limit is not None:
        limit = min(args.leads, args.limit)
    return exports.ExportOptions(
        format=args.format,
        delimiter=args.delimiter,
        utc_offset=args.utc_offset,
        organic=args.organic,
        forms=forms,
        since=args.since,
        until=args.until,
        limit=limit,
        inbox_url=args.inbox_url,
        lead_status=args.lead_status,
        bad_id_rows=tuple(args.bad_id_row),
        bad_date_rows=tuple(args.bad_date_row),
        unknown_headers=tuple(args.unknown_header),
    )


def peak_rss_mib() -> float | None:
    """This process's peak resident memory in MiB (None where it cannot be read)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    forms = tuple(f.strip() for f in args.forms.split(",") if f.strip()) if args.forms else None
    started = time.perf_counter()
    try:
        config = _config(args, forms)
        options = _options(args, forms)
        data = exports.data_of(config)
        if forms is not None:
            forms = tuple(f.id for f in exports.select_forms(data, forms))
            options = replace(options, forms=forms)
        result = exports.write_export(args.path, data, options=options)
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    summary = {
        "path": result.path,
        "format": result.format,
        "rows": result.rows,
        "columns": result.columns,
        "forms": list(forms) if forms else data.form_ids(),
        "seed": config.seed,
        "pages": config.pages,
        "forms_per_page": config.forms_per_page,
        "leads_per_form": config.leads_per_form,
        "days": config.days,
        "now": config.now,
        "seconds": round(time.perf_counter() - started, 2),
        "peak_rss_mib": peak_rss_mib(),
    }
    print(json.dumps(summary, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
