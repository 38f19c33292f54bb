"""fb_graph.progress on its own (pure logic, a fake clock): counts, rates, ETA, pace."""

from __future__ import annotations

import pytest

from fb_graph.progress import (
    INTERVAL_VARIABLE,
    Cadence,
    Progress,
    counted_pages,
    duration_text,
    interval_from,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_count_rate_and_eta_with_a_total():
    clock = Clock()
    progress = Progress("leads", 3000, clock=clock)
    assert progress.text() == "0 of 3,000 leads (0%)"
    clock.now += 2
    progress.add(1000)
    assert progress.rate == 500
    assert progress.eta == 4
    assert progress.text() == "1,000 of 3,000 leads (33%), 500 leads/s, ETA 4.0 s"
    clock.now += 4
    progress.add(2000)
    assert progress.text() == "3,000 of 3,000 leads (100%), 500 leads/s"  # no ETA when done
    assert progress.summary() == "3,000 of 3,000 leads in 6.0 s (500 leads/s)"


def test_without_a_total_no_share_and_no_eta():
    clock = Clock()
    progress = Progress("events", clock=clock)
    clock.now += 4
    progress.add(10)
    assert progress.eta is None
    assert progress.text() == "10 events, 2.5 events/s"
    assert progress.summary() == "10 events in 4.0 s (2.5 events/s)"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.04, "0.0 s"), (9.94, "9.9 s"), (42.4, "42 s"), (185, "3 min 05 s"), (7620, "2 h 07 min")],
)
def test_durations(seconds, text):
    assert duration_text(seconds) == text


def test_the_pace_of_lines():
    clock = Clock()
    cadence = Cadence(10, clock=clock)
    clock.now += 9.9
    assert not cadence.due()
    clock.now += 0.1
    assert cadence.due()
    assert not cadence.due()  # restarted
    assert Cadence(0, clock=clock).due()


@pytest.mark.parametrize(
    ("value", "seconds"), [(None, 10.0), ("", 10.0), ("0", 0.0), ("2.5", 2.5), ("x", 10.0),
                           ("-1", 10.0), ("nan", 10.0)],
)  # fmt: skip
def test_interval_from_the_environment(value, seconds):
    environ = {} if value is None else {INTERVAL_VARIABLE: value}
    assert interval_from(environ) == seconds


def test_counted_pages_counts_each_page_once_gone_through():
    seen: list[int] = []
    pages = counted_pages(iter([[1, 2, 3], [4]]), seen.append)
    assert next(pages) == [1, 2, 3]
    assert seen == []  # not before the caller is done with it
    assert next(pages) == [4]
    assert seen == [3]
    assert list(pages) == []
    assert seen == [3, 1]


def test_one_is_singular():
    clock = Clock()
    one = Progress("leads", clock=clock)
    clock.now += 1
    one.add(1)
    assert one.text() == "1 lead, 1.0 leads/s"
    assert one.summary() == "1 lead in 1.0 s (1.0 leads/s)"
    assert Progress("leads", 1, clock=clock).text() == "0 of 1 lead (0%)"
