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

from fb_graph.client import GraphClient, page_shape
from fb_graph.errors import GraphError


class PagingError(RuntimeError):
    """Meta's paging cannot be continued without following ``paging.next``, or loops."""


class Pager:
    """Reads every page of an edge; halves the page size when Meta asks for less data.

    One pager serves the whole run, so a halved size stays halved for the next forms.
    """

    def __init__(self, client: GraphClient, page_size: int, logger: logging.Logger) -> None:
        self.client = client
        self.page_size = page_size
        self.logger = logger

    def pages(
        self, path: str, params: Mapping[str, Any], *, max_size: int | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield the ``data`` list of each page of ``path``, first to last."""
        after: str | None = None
        sent: set[str] = set()
        while True:
            query = self._query(params, max_size, after)
            try:
                body = self.client.get(path, query, shape=page_shape)
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
            page, paging = body["data"], body.get("paging")
            # Nothing of this answer outlives the page: once the caller has gone through it
            # (and dropped it, see ``LeadsStream._read_slice``), its leads are freed before the
            # next answer is decoded, which then reuses their memory.
            del body
            yield page
            del page
            after = self._next_cursor(path, paging)
            if after is None:
                return
            if after in sent:
                raise PagingError(
                    f"Meta's paging of /{path} came back to a cursor already read after "
                    f"{len(sent) + 1} pages, so it would never end: the read stops here "
                    "(its bookmark is not moved); run the job again, and report it to Meta if "
                    "it repeats."
                )
            sent.add(after)

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
