"""Paging over a form's (or an ad's) leads: time filters, cursors and page windows.

Leads are ordered by key ``(created_time, index)``, newest first. A cursor is the key of
the last lead of a page, so leads that arrive between two pages never shift the next page.
"""

from __future__ import annotations

import base64
import json
import random
from dataclasses import dataclass

from fb_graph_sandbox import failures
from fb_graph_sandbox.data import VARIANTS, Form

FILTER_OPERATORS = ("LESS_THAN", "GREATER_THAN", "GREATER_THAN_OR_EQUAL")


@dataclass(frozen=True)
class Window:
    """created_time bounds: ``low <= t < high`` (None = open)."""

    low: int | None = None
    high: int | None = None

    def contains(self, t: int) -> bool:
        return (self.low is None or t >= self.low) and (self.high is None or t < self.high)


def _unix(value: object) -> int | None:
    """Unix seconds from an int or a digit string; anything else (ISO dates) is ignored."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def parse_filtering(raw: str | None) -> Window:
    """Meta's ``filtering`` JSON on ``time_created``; bad shapes are (#100) errors."""
    if not raw:
        return Window()
    try:
        rules = json.loads(raw)
    except ValueError:
        raise failures.invalid_parameter("(#100) param filtering must be an array.") from None
    if not isinstance(rules, list):
        raise failures.invalid_parameter("(#100) param filtering must be an array.")
    low: int | None = None
    high: int | None = None
    for rule in rules:
        if not isinstance(rule, dict) or "field" not in rule or "operator" not in rule:
            raise failures.invalid_parameter(
                "(#100) param filtering[0] must be an object with keys field, operator, value."
            )
        if rule["field"] != "time_created":
            raise failures.invalid_parameter(f"(#100) Filtering field {rule['field']} is invalid.")
        operator = rule["operator"]
        if operator not in FILTER_OPERATORS:
            raise failures.invalid_parameter(
                f"(#100) param filtering[operator] must be one of {{{', '.join(FILTER_OPERATORS)}}}"
            )
        value = _unix(rule.get("value"))
        if value is None:  # Meta silently ignores a value that is not Unix seconds
            continue
        if operator == "LESS_THAN":
            high = value if high is None else min(high, value)
        else:
            bound = value + 1 if operator == "GREATER_THAN" else value
            low = bound if low is None else max(low, bound)
    return Window(low, high)


def encode_cursor(key: tuple[int, int]) -> str:
    raw = f"sbx1:{key[0]}:{key[1]}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        tag, t, i = base64.urlsafe_b64decode(padded.encode()).decode().split(":")
        if tag != "sbx1":
            raise ValueError
        return int(t), int(i)
    except (ValueError, UnicodeDecodeError):
        raise failures.invalid_parameter(
            "(#100) The after cursor is not valid for this edge. Start again without it."
        ) from None


@dataclass
class Page:
    generated: list[int]  # indices, newest first
    added: list[dict]  # added leads in this page
    keys: list[tuple[int, int]]  # keys of the page's newest and oldest lead (empty page: [])
    more: bool
    order: list[tuple[str, object]]  # ("g", index) or ("a", lead) in serving order


def select_page(
    form: Form,
    added: list[dict],
    window: Window,
    after: tuple[int, int] | None,
    limit: int,
    residue: int | None = None,
    ad_id: str | None = None,
    shuffle_seed: int | None = None,
) -> Page:
    """The next ``limit`` leads (newest first) within ``window`` and below ``after``."""
    n = form.count
    lo = 0 if window.low is None else form.first_at_or_after(window.low)
    hi = n if window.high is None else form.first_at_or_after(window.high)
    if after is not None:
        hi = min(hi, form.first_key_at_or_after(after))
    indices: range = range(0)
    if hi > lo:
        if residue is None:
            indices = range(hi - 1, max(lo, hi - limit - 1) - 1, -1)
        else:
            start = hi - 1 - ((hi - 1 - residue) % VARIANTS)
            indices = range(start, lo - 1, -VARIANTS)[: limit + 1]
    extra = _added_in_window(added, window, after, ad_id)
    if not extra:  # the hot path: generated leads only, no key per lead needed
        chosen_indices = list(indices[:limit])
        order: list[tuple[str, object]] = [("g", i) for i in chosen_indices]
        if shuffle_seed is not None and order:
            random.Random(hash((shuffle_seed, chosen_indices[0]))).shuffle(order)
        keys = [form.key(chosen_indices[0]), form.key(chosen_indices[-1])] if order else []
        return Page(chosen_indices, [], keys, len(indices) > limit, order)
    candidates: list[tuple[tuple[int, int], str, object]] = [(form.key(i), "g", i) for i in indices]
    candidates.extend(extra)
    candidates.sort(key=lambda c: c[0], reverse=True)
    chosen = candidates[:limit]
    order = [(kind, item) for _, kind, item in chosen]
    if shuffle_seed is not None and order:
        random.Random(hash((shuffle_seed, chosen[0][0]))).shuffle(order)
    return Page(
        generated=[item for _, kind, item in chosen if kind == "g"],  # type: ignore[misc]
        added=[item for _, kind, item in chosen if kind == "a"],  # type: ignore[misc]
        keys=[chosen[0][0], chosen[-1][0]],
        more=len(candidates) > limit,
        order=order,
    )


def _added_in_window(
    added: list[dict], window: Window, after: tuple[int, int] | None, ad_id: str | None
) -> list[tuple[tuple[int, int], str, object]]:
    out: list[tuple[tuple[int, int], str, object]] = []
    for lead in added:
        key = (lead["_ct"], lead["_index"])
        if not window.contains(key[0]) or (after is not None and key >= after):
            continue
        if ad_id is not None and lead.get("ad_id") != ad_id:
            continue
        out.append((key, "a", lead))
    return out
