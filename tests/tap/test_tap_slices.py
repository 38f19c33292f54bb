"""Pure logic: how a form's window is cut into time slices (what each costs in calls)."""

from __future__ import annotations

import bisect
import itertools
import math
import random

from tap_fb_leads.slices import DAY, Slices

UNTIL = 1_800_000_000
SINCE = UNTIL - 90 * DAY
PAGE = 250
TARGET = 10 * PAGE


def _read(times: list[int], slices: Slices) -> list[int]:
    """Read every slice against these lead times (sorted); the leads each slice held."""
    held = []
    while (bounds := slices.current) is not None:
        inside = times[bisect.bisect_left(times, bounds[0]) : bisect.bisect_left(times, bounds[1])]
        held.append(len(inside))
        slices.done(len(inside), inside[0] if inside else None)
    return held


def _calls(held: list[int]) -> int:
    return sum(max(1, math.ceil(n / PAGE)) for n in held)


def _spread(count: int, start: int, end: int, seed: int = 1) -> list[int]:
    rng = random.Random(seed)
    return sorted(rng.randrange(start, end) for _ in range(count))


def test_slices_tile_the_window_oldest_first():
    slices = Slices(SINCE, UNTIL, TARGET, expected=20_000, born=UNTIL - 31 * DAY)
    seen = []
    while (bounds := slices.current) is not None:
        seen.append(bounds)
        slices.done(2_000)
    assert seen[0][0] == SINCE and seen[-1][1] == UNTIL
    assert all(a[1] == b[0] and a[0] < a[1] for a, b in itertools.pairwise(seen))


def test_an_empty_form_costs_one_call():
    assert _read([], Slices(SINCE, UNTIL, TARGET, expected=0, born=SINCE - DAY)) == [0]


def test_unknown_count_over_an_empty_window_costs_a_few_calls():
    assert len(_read([], Slices(SINCE, UNTIL, TARGET))) <= 8


def test_a_steady_form_is_read_in_slices_of_about_the_target():
    times = _spread(20_000, UNTIL - 30 * DAY, UNTIL)
    held = _read(times, Slices(SINCE, UNTIL, TARGET, expected=20_000, born=UNTIL - 31 * DAY))
    assert sum(held) == 20_000
    assert max(held) <= 1.5 * TARGET and 7 <= len(held) <= 10
    assert _calls(held) <= 20_000 / PAGE + len(held)


def test_a_burst_in_an_old_form_is_found_without_a_huge_slice():
    """An old form whose leads all came in the last two days: leads_count says little about
    where they are, so empty slices narrow toward the rest of the window."""
    times = _spread(20_000, UNTIL - 2 * DAY, UNTIL)
    held = _read(times, Slices(SINCE, UNTIL, TARGET, expected=20_000, born=UNTIL - 700 * DAY))
    assert sum(held) == 20_000
    assert max(held) <= 2 * TARGET
    assert _calls(held) <= 20_000 / PAGE + 40


def test_an_hourly_run_of_a_big_form_is_one_call():
    """Later runs read from the bookmark: an hour of a form with 20,000 leads in 30 days."""
    times = _spread(30, UNTIL - 3600, UNTIL)
    held = _read(times, Slices(UNTIL - 3600, UNTIL, TARGET, expected=20_000, born=SINCE))
    assert held == [30]
