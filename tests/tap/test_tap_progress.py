"""Progress lines over real HTTP: each form's leads read out of its leads_count, with a rate,
the run's total and ETA; never a lead's data or the token."""

from __future__ import annotations

import itertools
import json
import re

from tap_helpers import tap_config

from fb_graph.progress import INTERVAL_VARIABLE

LINE = re.compile(r"Progress: (.*)")
RATE = r"[\d,.]+ leads/s"


def progress_lines(stderr: str) -> list[str]:
    return [match.group(1) for match in map(LINE.search, stderr.splitlines()) if match]


def test_each_page_and_each_form_end_show_counts_rate_and_eta(make_sandbox, run_tap):
    sb = make_sandbox(forms_per_page=2, leads_per_form=250)
    forms = [f["id"] for page in sb.data.page_ids for f in sb.data.forms(page)]
    # 0 s between lines: one after every page (25 pages of 10 leads per form).
    result = run_tap(tap_config(sb, page_size=10), env={INTERVAL_VARIABLE: "0"})
    assert result.returncode == 0, result.stderr
    lines = progress_lines(result.stderr)
    first, second = forms

    pages = [line for line in lines if line.startswith(f"form {first}:")]
    # One line per page (a time slice's last page may be short): the count grows by the
    # page's size, never more than 10.
    counts = [int(re.match(rf"form {first}: (\d+) of", line).group(1)) for line in pages]
    assert len(counts) >= 25 and all(0 < b - a <= 10 for a, b in itertools.pairwise(counts))
    # Counted page by page, out of the form's leads_count, with a rate; the run's total is
    # the two forms' leads_count, known from the start.
    assert pages[0].startswith(f"form {first}: 10 of 250 leads (4%), ")
    assert re.search(RATE + r", ETA [\d.]+ (s|min)", pages[0]), pages[0]
    assert "; run: 10 of 500 leads (2%), " in pages[0]
    assert pages[-1].startswith(f"form {first}: 250 of 250 leads (100%), ")
    assert "; run: 250 of 500 leads (50%), " in pages[-1]

    done = [line for line in lines if " done: " in line]
    assert len(done) == 3, lines
    assert re.fullmatch(
        rf"form {first} done: 250 of 250 leads in [\d.]+ (s|min)( \({RATE}\))?; "
        r"run: 250 of 500 leads \(50%\).*",
        done[0],
    ), done[0]
    assert done[1].startswith(f"form {second} done: 250 of 250 leads in ")
    assert "; run: 500 of 500 leads (100%)" in done[1]
    assert re.fullmatch(r"run done: 500 of 500 leads in .* from 2 forms\.", done[2]), done[2]
    # The order: every page of the first form, its end, then the second form's.
    assert lines.index(done[0]) == len(pages)

    # Counts, rates, ids and times only: no lead's answers, names or the token.
    text = "\n".join(lines)
    assert sb.token not in result.stderr
    for lead in itertools.islice(sb.data.leads(first), 50):
        for field in lead["field_data"]:
            for value in field["values"]:
                if len(str(value)) > 3:
                    assert str(value) not in text
    assert "@" not in text
    # The SDK never moves these bookmarks record by record: no "not resumable" warning, no
    # progress_markers in any STATE (docs/tap.md).
    assert "not resumable" not in result.stderr
    assert "progress_markers" not in json.dumps(result.states)


def test_a_second_run_has_no_total_but_counts_and_a_rate(make_sandbox, run_tap):
    sb = make_sandbox(forms_per_page=1, leads_per_form=40)
    (form,) = [f["id"] for page in sb.data.page_ids for f in sb.data.forms(page)]
    first = run_tap(tap_config(sb, page_size=10), env={INTERVAL_VARIABLE: "0"})
    assert first.returncode == 0, first.stderr
    # The incremental read covers the lookback window only: leads_count is not its total.
    again = run_tap(
        tap_config(sb, page_size=10), state=first.final_state, env={INTERVAL_VARIABLE: "0"}
    )
    assert again.returncode == 0, again.stderr
    (done, run) = [line for line in progress_lines(again.stderr) if " done: " in line]
    assert re.fullmatch(rf"form {form} done: \d+ leads? in [^;]*; run: \d+ leads?(, {RATE})?", done)
    assert " of " not in done and "ETA" not in done
    assert run.startswith("run done: ")


def test_the_default_pace_writes_only_the_end_lines(make_sandbox, run_tap):
    sb = make_sandbox(forms_per_page=1, leads_per_form=120)
    env = {INTERVAL_VARIABLE: ""}  # unset: every 10 s, longer than this run
    result = run_tap(tap_config(sb, page_size=10), env=env)
    assert result.returncode == 0, result.stderr
    lines = progress_lines(result.stderr)
    assert len(lines) == 2 and " done: 120 of 120 leads in " in lines[0], lines
