"""``fb-leads-receiver doctor``: is everything in place for leads to arrive in real time?

One ✔ or ✘ line per check, each ✘ with its fix: the access token (``debug_token``: validity,
app, type, expiry), its permissions, the app installed on each Page with ``leadgen``, the app's
subscription (``leadgen`` to the expected callback URL), the leads of each Page readable (Leads
Access Manager); then a self-test end to end on each Page: a test lead made on the Page's first
ACTIVE form (after deleting an older one), seen arriving in this receiver's spool, read back by
id, then deleted (the tap skips an announced lead that no longer exists). Meta does not list
``include_values``: a test lead that arrives without values is reported by the self-test.

The self-test needs the receiver running, reachable by Meta, and the doctor run with the same
spool setting.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fb_graph.client import object_shape, page_shape
from fb_graph.errors import ErrorKind, GraphError
from fb_graph.fields import LEAD_FIELDS
from fb_graph.settings import SettingsError
from fb_leads_receiver.graph_setup import (
    LEADGEN,
    PERMISSIONS,
    RUN_SUBSCRIBE,
    Graph,
    Lines,
    Stop,
    app_fix,
    fix_for,
    graph,
    need,
    page_ids,
    show_url,
    wanted_fields,
)
from fb_leads_receiver.settings import ReceiverSettings, load_settings

DEFAULT_WAIT = 60.0
EXPIRY_MARGIN_SECONDS = 7 * 86400
POLL_SECONDS = 0.25
MAX_FORM_PAGES = 20
ACTIVE = "ACTIVE"
NO_VALUES = "changed_fields_only"  # the receiver's counter of entries without values
LEAD_ACCESS_FIX = (
    "assign the app in the Page's Leads Access Manager (Meta Business Suite, Settings, Leads "
    "access)"
)


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "doctor",
        help="check the token, subscriptions and leads access, then a test lead end to end",
        description="One line per check, ✔ or ✘ with the fix, then a self-test: a test lead "
        "on each Page, seen arriving in the spool and read back by id (the receiver must be "
        "running and reachable by Meta; use its config). Exit 0 when all is well, 1 when "
        "anything failed, 2 for a setting.",
    )
    parser.add_argument("--config", metavar="FILE", help="JSON file of settings")
    parser.add_argument(
        "--wait",
        metavar="SECONDS",
        type=float,
        default=DEFAULT_WAIT,
        help=f"how long to wait for the test lead's webhook (default {DEFAULT_WAIT:g})",
    )


def run(args: argparse.Namespace) -> int:
    if not math.isfinite(args.wait) or args.wait <= 0:
        raise SettingsError(f"--wait must be a number of seconds greater than 0, not {args.wait}.")
    settings, _ = load_settings(args.config)
    return doctor(settings, wait=args.wait)


def doctor(settings: ReceiverSettings, *, wait: float = DEFAULT_WAIT) -> int:
    """Every check, one line each; 0 when all passed."""
    need(settings, "app_id", "access_token", "callback_url", "page_ids")
    lines = Lines(settings)
    with graph(settings) as g:
        try:
            _checks(g, lines, page_ids(settings), wait)
        except Stop as stop:
            lines.fail(str(stop))
    return lines.exit_code


def _checks(g: Graph, lines: Lines, pages: list[str], wait: float) -> None:
    token_ok = _token(g, lines)
    installed = {page: _installed(g, lines, page) for page in pages}
    subscribed = _subscription(g, lines)
    forms = {page: _leads_readable(g, lines, page) for page in pages}
    if not (token_ok and subscribed):
        lines.fail("self-test not run: fix the ✘ lines above first, then run doctor again.")
        return
    ready: dict[str, str | None] = {}
    for page in pages:
        readable, active = forms[page]
        if installed[page] and readable:
            ready[page] = active
        else:
            lines.fail(f"self-test of Page {page} not run: fix its ✘ lines above first.")
    if ready:
        _self_test(g, lines, ready, wait)


# -- the checks --------------------------------------------------------------------------------


def _data_object(body: Any) -> str | None:
    return (
        None
        if isinstance(body, dict) and isinstance(body.get("data"), dict)
        else ("an answer without a data object")
    )


def _token(g: Graph, lines: Lines) -> bool:
    """The token line and the permissions line; True when both passed."""
    settings = g.settings
    try:
        data = g.app.get("debug_token", {"input_token": settings.access_token}, shape=_data_object)[
            "data"
        ]
    except GraphError as exc:
        lines.fail(f"token: debug_token could not check it: {app_fix(exc)}.")
        lines.fail("permissions: not checked, as the token could not be.")
        return False
    problem = _token_problem(data, settings)
    if problem:
        lines.fail(f"token: {problem}.")
    else:
        lines.ok(
            f"token: a valid {data.get('type')} token of app {settings.app_id}, "
            f"{_expiry(data.get('expires_at'))}"
        )
    if not data.get("is_valid"):
        lines.fail("permissions: not checked, as the token is not valid.")
        return False
    scopes = {str(s) for s in data.get("scopes") or ()}
    missing = [p for p in PERMISSIONS if p not in scopes]
    if missing:
        lines.fail(
            f"permissions: the token lacks {', '.join(missing)}: grant them to the app "
            "(Advanced Access for a Live app), then create a new token and set it as "
            "access_token."
        )
    else:
        lines.ok(f"permissions: {', '.join(PERMISSIONS)}")
    return not problem and not missing


def _token_problem(data: dict[str, Any], settings: ReceiverSettings) -> str | None:
    new_token = "create a long-lived Page token or a system-user token and set it as access_token"
    if not data.get("is_valid"):
        error = data.get("error")
        error = error if isinstance(error, dict) else {}
        said = str(error.get("message") or "no reason given")[:160].rstrip(".")
        return f"the access token is not valid (Meta said: {said}): {new_token}"
    if str(data.get("app_id")) != settings.app_id:
        return (
            f"the access token was made for app {data.get('app_id')}, not app_id "
            f"{settings.app_id}: create it with this app"
        )
    kind = str(data.get("type"))
    if kind not in ("PAGE", "SYSTEM_USER"):
        return (
            f"the access token is a {kind} token, and installing the app on a Page needs a Page "
            f"token (from /me/accounts) or a system-user token: {new_token}"
        )
    now = time.time()
    for key, what in (("expires_at", "expires"), ("data_access_expires_at", "data access ends")):
        at = _int(data.get(key))
        if at and at - now < EXPIRY_MARGIN_SECONDS:
            return f"the access token's {what} {_date(at)}: {new_token}"
    return None


def _expiry(raw: object) -> str:
    at = _int(raw)
    return f"expires {_date(at)}" if at else "never expires"


def _date(at: int) -> str:
    return time.strftime("on %Y-%m-%d %H:%M UTC", time.gmtime(at))


def _int(raw: object) -> int:
    try:
        return int(raw)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return 0


def _installed(g: Graph, lines: Lines, page: str) -> bool:
    wanted = wanted_fields(g.settings)
    step = f"Page {page}: app installed with {', '.join(wanted)}"
    try:
        fields = g.installed_fields(page)
    except GraphError as exc:
        lines.fail(
            f"Page {page}: its installed apps could not be read: "
            f"{fix_for(exc, needs='pages_manage_metadata')}."
        )
        return False
    if fields is None:
        lines.fail(f"Page {page}: the app is not installed on it: {RUN_SUBSCRIBE}.")
        return False
    missing = [f for f in wanted if f not in fields]
    if missing:
        lines.fail(
            f"Page {page}: the app is installed without {', '.join(missing)} "
            f"({', '.join(fields) or 'no field'}): {RUN_SUBSCRIBE}."
        )
        return False
    lines.ok(step)
    return True


def _subscription(g: Graph, lines: Lines) -> bool:
    expected = str(g.settings.callback_url)
    app = f"app {g.settings.app_id}"
    try:
        current = g.app_subscription()
    except GraphError as exc:
        lines.fail(f"app subscription: {app}'s subscriptions could not be read: {app_fix(exc)}.")
        return False
    if current is None or LEADGEN not in current.fields:
        lines.fail(
            f"app subscription: {app} is not subscribed to {LEADGEN} webhooks of Pages: "
            f"{RUN_SUBSCRIBE}."
        )
        return False
    missing = [f for f in wanted_fields(g.settings) if f not in current.fields]
    if missing:
        lines.fail(
            f"app subscription: {app} is not subscribed to the Messenger fields "
            f"{', '.join(missing)} of Pages (messenger is true): {RUN_SUBSCRIBE}."
        )
        return False
    if current.callback_url != expected:
        lines.fail(
            f"app subscription: {app} sends {LEADGEN} to {show_url(current.callback_url)}, not "
            f"to callback_url {show_url(expected)}: run fb-leads-receiver subscribe --replace "
            "(or fix callback_url)."
        )
        return False
    shown = ", ".join(wanted_fields(g.settings))
    lines.ok(
        f"app subscription: {shown} to {show_url(expected)} (include_values: see the self-test)"
    )
    return True


def _leads_readable(g: Graph, lines: Lines, page: str) -> tuple[bool, str | None]:
    """Whether the Page's leads are readable, and its first ACTIVE form (None: none)."""
    try:
        forms = _forms(g, page)
    except GraphError as exc:
        lines.fail(
            f"Page {page}: its lead forms could not be read: "
            f"{fix_for(exc, needs='pages_manage_ads and pages_read_engagement')}."
        )
        return False, None
    if not forms:
        lines.fail(
            f"Page {page}: it has no lead form, so neither its leads access nor the "
            "webhook can be tested: create a lead form on it."
        )
        return False, None
    active = next((form for form, status in forms if status == ACTIVE), None)
    form = active or forms[0][0]
    try:
        g.page.get(f"{form}/leads", {"fields": "id", "limit": 1}, shape=page_shape)
    except GraphError as exc:
        if exc.kind is ErrorKind.NOT_FOUND:
            lines.fail(
                f"Page {page}: the app cannot read its leads (form {form} answers "
                f"{exc.code}/{exc.subcode}): {LEAD_ACCESS_FIX}."
            )
        else:
            lines.fail(
                f"Page {page}: its leads could not be read: "
                f"{fix_for(exc, needs='leads_retrieval')}."
            )
        return False, None
    lines.ok(f"Page {page}: leads readable (form {form})")
    return True, active


def _forms(g: Graph, page: str) -> list[tuple[str, str]]:
    """The Page's forms as (id, status), paged by cursor until an ACTIVE one is found."""
    forms: list[tuple[str, str]] = []
    params: dict[str, Any] = {"fields": "id,status", "limit": 100}
    sent: set[str] = set()
    for _ in range(MAX_FORM_PAGES):
        answer = g.page.get(f"{page}/leadgen_forms", params, shape=page_shape)
        forms += [
            (str(f.get("id")), str(f.get("status"))) for f in answer["data"] if isinstance(f, dict)
        ]
        after = ((answer.get("paging") or {}).get("cursors") or {}).get("after")
        has_next = bool((answer.get("paging") or {}).get("next"))
        if any(s == ACTIVE for _, s in forms) or not has_next or not after or after in sent:
            break
        sent.add(after)
        params = {**params, "after": after}
    return forms


# -- the self-test -----------------------------------------------------------------------------


def _self_test(g: Graph, lines: Lines, forms: dict[str, str | None], wait: float) -> None:
    """A test lead per Page, seen in the spool, read back by id, then deleted."""
    import sqlalchemy as sa

    from fb_graph.spool import SpoolError

    made: dict[str, tuple[str, str]] = {}  # lead -> (page, form)
    try:
        arrived, without_values = _make_and_wait(g, lines, forms, wait, made)
    except (SpoolError, sa.exc.SQLAlchemyError) as exc:
        problem = (
            str(exc)
            if isinstance(exc, SpoolError)
            else (f"The spool could not be read ({type(exc).__name__}).")
        )
        lines.fail(f"self-test: {problem.rstrip('.')}: check the spool setting.")
        arrived, without_values = {}, False
        made.clear()
    for lead, (page, form) in made.items():
        step = f"self-test of Page {page}: test lead {lead} on form {form}"
        if lead not in arrived:
            lines.fail(
                f"{step} did not reach the spool in {wait:g} s: "
                + _not_arrived_fix(g.settings, without_values)
            )
        else:
            _read_back(g, lines, step, lead, arrived[lead])
        try:
            g.page.call("DELETE", lead)
        except GraphError:
            pass  # deleted first by the next doctor run


def _make_and_wait(
    g: Graph,
    lines: Lines,
    forms: dict[str, str | None],
    wait: float,
    made: dict[str, tuple[str, str]],
) -> tuple[dict[str, float], bool]:
    """Test leads made (into ``made``), then how long each took to reach the spool, and
    whether entries without values arrived meanwhile."""
    with _spool(g.settings, lines) as spool:
        if spool is None:
            return {}, False
        start = _last_seq(spool)
        no_values = _counter(spool, NO_VALUES)
        for page, form in forms.items():
            if form is None:
                lines.fail(
                    f"self-test of Page {page}: it has no ACTIVE lead form to make a test "
                    "lead on: activate or create one."
                )
                continue
            try:
                _delete_test_leads(g, form)
                lead = str(g.page.post(f"{form}/test_leads", shape=object_shape)["id"])
            except GraphError as exc:
                lines.fail(
                    f"self-test of Page {page}: no test lead could be made on form {form}: "
                    f"{fix_for(exc, needs='leads_retrieval and pages_manage_ads')}."
                )
                continue
            made[lead] = (page, form)
        arrived = _wait_for(spool, start, set(made), wait)
        return arrived, _counter(spool, NO_VALUES) > no_values


def _not_arrived_fix(settings: ReceiverSettings, without_values: bool) -> str:
    if without_values:
        return (
            "deliveries arrive without values, as the app is subscribed without "
            "include_values: run fb-leads-receiver subscribe --replace."
        )
    return (
        f"check that fb-leads-receiver serve runs at {show_url(str(settings.callback_url))} "
        "with this spool and is reachable by Meta (its /status page, and Meta's Lead Ads "
        "Testing Tool shows each delivery's status)."
    )


def _read_back(g: Graph, lines: Lines, step: str, lead: str, seconds: float) -> None:
    try:
        answer = g.page.get(lead, {"fields": ",".join(LEAD_FIELDS)}, shape=object_shape)
    except GraphError as exc:
        fix = LEAD_ACCESS_FIX if exc.kind is ErrorKind.NOT_FOUND else fix_for(exc)
        lines.fail(
            f"{step} arrived in the spool after {seconds:.1f} s but could not be read back: {fix}."
        )
        return
    if str(answer["id"]) != lead:
        lines.fail(f"{step} was read back as lead {answer['id']}: report this to Meta.")
        return
    lines.ok(f"{step}: in the spool after {seconds:.1f} s, read back by id")


def _delete_test_leads(g: Graph, form: str) -> None:
    """Meta makes one test lead per form: delete any left by an earlier run."""
    answer = g.page.get(f"{form}/test_leads", {"fields": "id", "limit": 25}, shape=page_shape)
    for old in answer["data"]:
        if isinstance(old, dict) and old.get("id"):
            g.page.call("DELETE", str(old["id"]))


@contextmanager
def _spool(settings: ReceiverSettings, lines: Lines) -> Iterator[Any]:
    """The receiver's spool, or None (after a ✘ line) when it cannot be opened."""
    from fb_graph.spool import Spool, SpoolError

    location = settings.spool
    if "://" not in location and not Path(location).is_file():
        lines.fail(
            f"self-test: the spool {location} does not exist here: run doctor in the "
            "receiver's working folder with its config (the same spool setting)."
        )
        yield None
        return
    try:
        spool = Spool(location)
    except SpoolError as exc:
        lines.fail(f"self-test: {exc}")
        yield None
        return
    try:
        yield spool
    finally:
        spool.close()


def _last_seq(spool: Any) -> int:
    import sqlalchemy as sa

    from fb_graph.spool import changes_table

    with spool.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.max(changes_table.c.seq))).scalar() or 0)


def _counter(spool: Any, name: str) -> int:
    return int(spool.status()["counters"].get(name, 0))


def _wait_for(spool: Any, seq: int, leads: set[str], wait: float) -> dict[str, float]:
    """Poll the spool after ``seq`` until every lead arrived or ``wait`` passed: the seconds
    each took."""
    started = time.monotonic()
    arrived: dict[str, float] = {}
    while leads - set(arrived):
        for change in spool.changes_after(seq, limit=1000):
            seq = change.seq
            if change.key in leads:
                arrived.setdefault(change.key, time.monotonic() - started)
        if time.monotonic() - started >= wait:
            break
        time.sleep(POLL_SECONDS)
    return arrived
