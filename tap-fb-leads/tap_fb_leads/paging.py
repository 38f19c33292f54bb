"""Cursor paging over a Graph edge, built from ``cursors.after`` only.

``paging.next`` carries the access token in its query string: it is read only to know
whether another page exists, and is never followed, stored or logged. Every answer must be a
page (:func:`fb_graph.client.page_shape`: the client retries one that is not, then fails), and
a cursor never comes back within one read: a repeated cursor would read the same pages forever.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

from fb_graph.client import Ahead, GraphClient, page_shape
from fb_graph.errors import GraphError
from tap_fb_leads.lead_page import LeadPage, decode_lead_page, lead_page_shape


class PagingError(RuntimeError):
    """Meta's paging cannot be continued without following ``paging.next``, or loops."""


class Pager:
    """Reads every page of an edge; halves the page size when Meta asks for less data.

    One pager serves the whole run, so a halved size stays halved for the next forms.

    With ``ahead``, the next page is asked for as soon as the cursor to it is known, before the
    page just read is handed on (:meth:`GraphClient.get_ahead`): the server works on it while
    the caller writes this one. One page at most is on its way and one in the caller's hands;
    calls, retries and errors are the same as without it, and an error of the page read ahead
    is raised where that page would have been read.
    """

    def __init__(
        self, client: GraphClient, page_size: int, logger: logging.Logger, *, ahead: bool = False
    ) -> None:
        self.client = client
        self.page_size = page_size
        self.logger = logger
        self.ahead = ahead

    def pages(
        self,
        path: str,
        params: Mapping[str, Any],
        *,
        max_size: int | None = None,
        leads: bool = False,
    ) -> Iterator[list[Any]]:
        """Yield the ``data`` list of each page of ``path``, first to last. ``leads``: a page
        of leads in its usual shape is read into :class:`~tap_fb_leads.lead_page.Lead`
        structures (any other page into dicts, as without it)."""
        shape, decode = (lead_page_shape, decode_lead_page) if leads else (page_shape, None)
        after: str | None = None
        sent: set[str] = set()
        coming: Ahead | None = None  # the next page, asked for ahead
        while True:
            query = self._query(params, max_size, after)
            try:
                if coming is not None:
                    asked, coming = coming, None
                    body = asked.result()  # asked with this very query
                else:
                    body = self.client.get(path, query, shape=shape, decode=decode)
            except GraphError as error:
                if error.reduce_data and query["limit"] > 1:
                    self.page_size = max(1, query["limit"] // 2)
                    self.logger.warning(
                        "Meta asked for less data per call: page_size lowered from %d to %d.",
                        query["limit"],
                        self.page_size,
                    )
                    continue
                raise
            if type(body) is LeadPage:
                page, paging = body.data, body.paging
            else:
                page, paging = body["data"], body.get("paging")
            # Nothing of this answer outlives the page: once the caller has gone through it
            # (and dropped it, see ``LeadsStream._read_slice``), its leads are freed; only the
            # page asked for ahead (or, without ``ahead``, none) is alive beside it.
            del body
            # The cursor is read before the page is handed on (to ask for the next page now);
            # a problem with it is raised after the page's leads, as it always was.
            stop: PagingError | None = None
            try:
                after = self._next_cursor(path, paging)
                if after is not None and after in sent:
                    raise PagingError(
                        f"Meta's paging of /{path} came back to a cursor already read after "
                        f"{len(sent) + 1} pages, so it would never end: the read stops here "
                        "(its bookmark is not moved); run the job again, and report it to Meta "
                        "if it repeats."
                    )
            except PagingError as exc:
                stop, after = exc, None
            if after is not None:
                sent.add(after)
                if self.ahead:
                    coming = self.client.get_ahead(
                        path, self._query(params, max_size, after), shape=shape, decode=decode
                    )
            yield page
            del page
            if stop is not None:
                try:
                    raise stop
                finally:
                    del stop
            if after is None:
                return

    def _query(
        self, params: Mapping[str, Any], max_size: int | None, after: str | None
    ) -> dict[str, Any]:
        limit = min(self.page_size, max_size) if max_size else self.page_size
        query = {**params, "limit": limit}
        if after:
            query["after"] = after
        return query

    @staticmethod
    def _next_cursor(path: str, paging: object) -> str | None:
        """The cursor of the next page (from the answer's ``paging``), or None on the last."""
        if not isinstance(paging, dict) or not paging.get("next"):
            return None
        cursors = paging.get("cursors")
        next_after = cursors.get("after") if isinstance(cursors, dict) else None
        if not next_after:
            raise PagingError(
                f"Meta announced another page of /{path} but sent no cursor to ask for it: "
                "run the job again, and report it if it repeats."
            )
        return str(next_after)
