"""Discovery's Graph reads: the configured Pages' lead forms, whose questions become the
properties of ``leads.answers`` (:mod:`tap_fb_leads.questions`).

When to read them, and what a failure does:

- ``--discover``: always. A Page the token may not read (a missing permission, a Page it
  cannot see) is a warning, and its questions are left undeclared (a degraded catalog that
  still works: their answers stay in ``answers`` and ``field_data``). Anything else (a bad
  token, Graph unreachable, a block longer than the wait allowed) fails with one sentence:
  a catalog missing questions for a passing reason would be cached and used by later runs.
- A run without ``--catalog``: only when the forms are polled; the same answer is kept for
  the ``forms`` stream (:meth:`GraphRun.read_forms`), so discovery costs no call, and an error
  is met by that stream where it always met it (its own sentences and rules).
- A run with ``--catalog``: never; the catalog's ``answers`` is used as it is.
"""

from __future__ import annotations

import logging
import typing as t

from fb_graph.errors import ErrorKind
from tap_fb_leads.answer_names import AsciiNames
from tap_fb_leads.failures import FormsUnreadable
from tap_fb_leads.questions import AnswerColumns, answers_property
from tap_fb_leads.schemas import LEADS_SCHEMA

if t.TYPE_CHECKING:
    from tap_fb_leads.run import GraphRun

_DEGRADED = (ErrorKind.PERMISSION, ErrorKind.NOT_FOUND)
POSTGRES_NAME_BYTES = 63
_ANSWERS_DESCRIPTION: str = LEADS_SCHEMA["properties"]["answers"]["description"]


def discovered_answers(
    run: GraphRun, logger: logging.Logger, *, discover: bool, separator: str | None = None
) -> dict[str, t.Any]:
    """The ``answers`` property declaring every question of the configured forms (only those
    of ``form_ids`` when set), merged over all Pages. ``discover``: this is ``--discover``;
    ``separator``: the flattening separator when the tap flattens its records."""
    settings = run.settings
    allow = settings.form_ids
    columns = AnswerColumns()
    for page_id in settings.page_ids:
        read = run.read_forms(page_id)
        for page in read.pages:
            for form in page:
                if isinstance(form, dict) and (allow is None or str(form.get("id")) in allow):
                    columns.add_form(form.get("questions"))
        error = read.error
        if error is None or not discover:
            continue  # without --discover the forms stream meets the error (see above)
        if error.kind not in _DEGRADED:
            raise FormsUnreadable(page_id, error, settings.app_secret is not None)
        logger.warning(
            "Cannot read the lead forms of Page %s (%s): their questions are not declared in "
            "the catalog; their answers are still in leads' answers and field_data.",
            page_id,
            error.kind.value,
        )
    if separator is not None and not settings.ascii_answer_keys:
        _warn_long_columns(columns.keys(), separator, logger)
    names = None
    if settings.ascii_answer_keys:
        ascii_names = AsciiNames()
        names = {key: ascii_names.name(key) for key in columns.keys()}
    logger.info(
        "Declared %d questions of the forms of %d Pages in leads' answers.",
        len(columns),
        len(settings.page_ids),
    )
    return answers_property(columns.properties(names), _ANSWERS_DESCRIPTION)


def _warn_long_columns(keys: t.Iterable[str], separator: str, logger: logging.Logger) -> None:
    """Flattened, a key longer than PostgreSQL's identifiers makes a column target-postgres
    cannot load (PostgreSQL cuts the name, the target then adds the column again)."""
    long = [key for key in keys if len(f"answers{separator}{key}".encode()) > POSTGRES_NAME_BYTES]
    if long:
        logger.warning(
            "%d question keys make flattened column names longer than PostgreSQL's %d bytes "
            "(answers%s%s): set ascii_answer_keys for a target that limits names (docs/tap.md, "
            "Question columns).",
            len(long),
            POSTGRES_NAME_BYTES,
            separator,
            long[0],
        )
