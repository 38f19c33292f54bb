"""Pure logic: the in-run dedupe of lead ids is exact across its set and frozen chunks."""

from __future__ import annotations

import random

import pytest

from tap_fb_leads.seen import SeenIds


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 18])
def test_same_answers_as_a_set(chunk):
    rng = random.Random(chunk)
    pool = [str(rng.randrange(10**15, 10**17)) for _ in range(3000)]
    pool += ["0012", "12", "abc", "", "1" * 19, "1" * 18, "١٢"]  # odd shapes kept apart
    seen, reference = SeenIds(chunk=chunk), set()
    for _ in range(12_000):
        lead_id = rng.choice(pool)
        assert seen.add(lead_id) is (lead_id not in reference)
        reference.add(lead_id)
    assert len(seen) == len(reference)


def test_chunks_stay_few_and_old_ids_are_still_found():
    seen = SeenIds(chunk=100)
    ids = [str(2 * 10**15 + i * 7919) for i in range(10_000)]
    assert all(seen.add(i) for i in ids)
    assert seen.chunks <= 8  # log2(10,000 / 100) + 1
    assert not any(seen.add(i) for i in ids)
    assert "12" != "012" and seen.add("012") and seen.add("12")


@pytest.mark.parametrize("chunk", [1, 7, 64, 500, 1 << 18])
def test_a_page_at_once_answers_as_one_id_at_a_time(chunk):
    """add_page: the same answers, the same chunks, as add() of each id in turn."""
    rng = random.Random(chunk)
    pool = [str(rng.randrange(10**15, 10**17)) for _ in range(3000)]
    odd = ["0012", "12", "abc", "", "1" * 19, "1" * 18, "١٢", "0", "+12", " 12"]
    one, many = SeenIds(chunk=chunk), SeenIds(chunk=chunk)
    for n in range(60):
        size = rng.choice([0, 1, 50, 200])
        page = [rng.choice(pool) for _ in range(size)]
        if n % 3 == 0:
            page = [str(10**16 + n * 1000 + i) for i in range(size)]  # all new
        if n % 7 == 0 and page:
            page[rng.randrange(len(page))] = rng.choice(odd)
        expected = [one.add(lead_id) for lead_id in page]
        answered = many.add_page(page)
        assert (expected if answered is None else answered) == expected
        assert answered is not None or all(expected)
        assert (len(many), many.chunks) == (len(one), one.chunks)
