"""Client helpers for the sandbox tests: plain ``requests`` calls with the token in a header."""

from __future__ import annotations

import requests

from fb_graph.errors import parse_error

VERSION = "v26.0"


class Graph:
    """A tiny client: what a careful plugin would send, nothing more."""

    def __init__(self, sb, token: str | None = None) -> None:
        self.sb = sb
        self.token = sb.token if token is None else token
        self.session = requests.Session()

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def get(self, path: str, **params) -> requests.Response:
        return self.session.get(
            f"{self.sb.url}/{VERSION}/{path}", headers=self.headers(), params=params, timeout=30
        )

    def post(self, path: str, json=None, data=None, **params) -> requests.Response:
        return self.session.post(
            f"{self.sb.url}/{VERSION}/{path}",
            headers=self.headers(),
            params=params,
            json=json,
            data=data,
            timeout=30,
        )

    def all_leads(self, edge_owner: str, limit: int, **params) -> list[dict]:
        """Every lead of a form or ad, building each next request from cursors.after."""
        leads: list[dict] = []
        after = None
        for _ in range(100_000):
            query = {"limit": limit, **params}
            if after:
                query["after"] = after
            answer = self.get(f"{edge_owner}/leads", **query)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert len(body["data"]) <= limit
            leads += body["data"]
            paging = body.get("paging", {})
            if "next" not in paging:
                return leads
            after = paging["cursors"]["after"]
        raise AssertionError("paging never ended")


def error_of(answer: requests.Response):
    """The answer's Graph error, parsed and classified by the shared code."""
    error = parse_error(answer.status_code, answer.content)
    assert error is not None, answer.text
    return error
