"""Cursor paging over a Graph edge, built from ``cursors.after`` only.

``paging.next`` carries the access token in its query string: it is read only to know
whether another page exists, and is never followed, stored or logged.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

from fb_graph.errors import GraphError
from tap_fb_leads.client import GraphClient


class PagingError(RuntimeError):
    """Meta's paging cannot be continued without following ``paging.next``."""


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
        while True:
            limit = min(self.page_size, max_size) if max_size else self.page_size
            query = {**params, "limit": limit}
            if after:
                query["after"] = after
            try:
                body = self.client.get(path, query)
            except GraphError as error:
                if error.reduce_data and limit > 1:
                    self.page_size = max(1, limit // 2)
                    self.logger.warning(
                        "Meta asked for less data per call: page_size lowered from %d to %d.",
                        limit,
                        self.page_size,
                    )
                    continue
                raise
            data = body.get("data")
            if not isinstance(data, list):
                data = []
            yield data
            paging = body.get("paging")
            if not isinstance(paging, dict) or not paging.get("next"):
                return
            cursors = paging.get("cursors")
            next_after = cursors.get("after") if isinstance(cursors, dict) else None
            if not next_after or next_after == after:
                raise PagingError(
                    f"Meta announced another page of /{path} but sent no new cursor to ask "
                    "for it: run the job again, and report it if it repeats."
                )
            after = str(next_after)


T = TypeVar("T")
_END = object()
_JOIN_SECONDS = 5.0


def read_ahead(pages: Iterator[T], name: str = "graph-read-ahead") -> Iterator[T]:
    """Yield ``pages`` while a thread already fetches the next one.

    The Graph call for page N+1 (network, Meta's time, JSON decoding) overlaps the work on
    page N. Calls stay sequential and in order, so cursors, retries, throttle waits and
    page-size halving behave exactly as without it; an error in the thread is raised here,
    at the page where it happened.
    """
    handoff: queue.Queue[tuple[object, BaseException | None]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(item: object, error: BaseException | None = None) -> bool:
        while not stop.is_set():
            try:
                handoff.put((item, error), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for page in pages:
                if not put(page):
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(_END, exc)
            return
        put(_END)

    worker = threading.Thread(target=work, name=name, daemon=True)
    worker.start()
    try:
        while True:
            item, error = handoff.get()
            if item is _END:
                if error is not None:
                    raise error
                return
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join(timeout=_JOIN_SECONDS)
