"""``target-fb-leads-postgres --config FILE [--config FILE …] [--input FILE]``: Singer
messages from stdin (or the file) into PostgreSQL; STATE messages to stdout once their
records are committed.  Settings, named as MeltanoLabs target-postgres names them:

host, port (5432), user, password, database (or sqlalchemy_url, a ``postgresql://`` or
``postgresql+psycopg://`` URL instead), default_target_schema, load_method
(``upsert``, the default, or ``append-only``), add_record_metadata (true), batch_size_rows
(30000), ssl_enable, ssl_mode (verify-full when ssl_enable), ssl_certificate_authority (a
file).  target-postgres' other settings (use_copy, validate_records, …) are accepted and
have no effect here.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg

from target_fb_leads_postgres.loader import BATCH_ROWS, Loader
from target_fb_leads_postgres.tables import LoadError

NAME = "target-fb-leads-postgres"
SETTINGS: dict[str, type | tuple[type, ...]] = {
    "host": str,
    "port": int,
    "user": str,
    "password": str,
    "database": str,
    "default_target_schema": str,
    "load_method": str,
    "add_record_metadata": bool,
    "batch_size_rows": int,
    "ssl_enable": bool,
    "ssl_mode": str,
    "ssl_certificate_authority": str,
    "sqlalchemy_url": str,
}
REQUIRED = ("host", "user", "database")
# A SQLAlchemy URL's scheme, with or without its driver: libpq reads the rest as it is.
URL_SCHEME = re.compile(r"^postgres(?:ql)?(?:\+\w+)?://")


def read_config(paths: list[str]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for path in paths:
        try:
            loaded = json.loads(Path(path).read_text())
        except (OSError, ValueError) as error:
            raise LoadError(
                f"the config file {path} cannot be read as JSON ({type(error).__name__}); "
                "pass a JSON object with --config."
            ) from None
        if not isinstance(loaded, dict):
            raise LoadError(f"the config file {path} is not a JSON object.")
        config.update(loaded)
    for key, value in config.items():
        kind = SETTINGS.get(key)
        if kind is None or value is None:
            continue
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            if isinstance(value, str) and value.isdigit():
                config[key] = int(value)
                continue
            raise LoadError(
                f"the setting {key} must be a whole number, not {type(value).__name__}."
            )
        if kind is bool and not isinstance(value, bool):
            raise LoadError(f"the setting {key} must be true or false.")
        if kind is str and not isinstance(value, str):
            raise LoadError(f"the setting {key} must be text.")
    if (config.get("ssh_tunnel") or {}).get("enable"):
        raise LoadError(
            "ssh_tunnel is not supported; open the tunnel yourself and set host and port to "
            "its local end."
        )
    url = config.get("sqlalchemy_url")
    if url and not URL_SCHEME.match(url):
        raise LoadError("sqlalchemy_url must start with postgresql:// or postgresql+psycopg://.")
    missing = [] if url else [key for key in REQUIRED if not config.get(key)]
    if missing:
        raise LoadError(
            f"the setting{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"{'are' if len(missing) > 1 else 'is'} missing; set the warehouse's connection "
            "(host, port, user, password, database)."
        )
    # The defaults, set once here for everything below.
    config["load_method"] = config.get("load_method") or "upsert"
    config["batch_size_rows"] = config.get("batch_size_rows") or BATCH_ROWS
    if config["load_method"] not in ("upsert", "append-only"):
        raise LoadError(
            f"load_method {config['load_method']!r} is not supported; use upsert or append-only."
        )
    if config["batch_size_rows"] < 1:
        raise LoadError("batch_size_rows must be at least 1.")
    return config


def connect(config: dict[str, Any]) -> psycopg.Connection:
    options: dict[str, Any] = {"application_name": NAME, "connect_timeout": 30}
    url = config.get("sqlalchemy_url")
    if url:
        parts = urlsplit(url)
        where, user = f"{parts.hostname}:{parts.port or 5432}", parts.username
        conninfo = URL_SCHEME.sub("postgresql://", url)
    else:
        where, user, conninfo = f"{config['host']}:{config.get('port') or 5432}", config["user"], ""
        options.update(
            host=config["host"],
            port=config.get("port") or 5432,
            user=config["user"],
            dbname=config["database"],
        )
        if config.get("password"):
            options["password"] = config["password"]
    if config.get("ssl_enable"):
        options["sslmode"] = config.get("ssl_mode") or "verify-full"
        if config.get("ssl_certificate_authority"):
            options["sslrootcert"] = config["ssl_certificate_authority"]
    try:
        return psycopg.connect(conninfo, **options)
    except psycopg.Error as error:
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise LoadError(
            f"cannot connect to PostgreSQL at {where} as {user} ({reason}); check host, port, "
            "user, password, database (or sqlalchemy_url) and SSL."
        ) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=NAME, description=__doc__.splitlines()[0])
    parser.add_argument("--config", action="append", default=[], help="a JSON file of settings")
    parser.add_argument("--input", help="read the messages from this file instead of stdin")
    parser.add_argument("--about", action="store_true", help="print what this target is")
    parser.add_argument("--format", default="json", help="with --about: json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.about:
        print(
            json.dumps(
                {
                    "name": NAME,
                    "description": __doc__.split("\n\n")[0],
                    "capabilities": [],
                    "settings": sorted(SETTINGS),
                },
                indent=2,
            )
        )
        return 0
    try:
        config = read_config(args.config)
        conn = connect(config)
        try:
            loader = Loader(
                conn,
                sys.stdout,
                default_schema=config.get("default_target_schema"),
                batch_rows=config["batch_size_rows"],
                metadata=config.get("add_record_metadata", True) is not False,
                upsert=config["load_method"] == "upsert",
            )
            if args.input:
                with open(args.input, encoding="utf-8") as lines:
                    loader.run(lines)
            else:
                loader.run(io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8"))
        finally:
            conn.close()
    except LoadError as error:
        print(f"{NAME}: {error}", file=sys.stderr)
        return 1
    except UnicodeDecodeError:
        print(f"{NAME}: the input is not UTF-8 text (Singer messages are).", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"{NAME}: {type(error).__name__}: {error.strerror or error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
