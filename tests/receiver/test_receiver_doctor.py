"""``fb-leads-receiver doctor`` against the sandbox over loopback HTTP: the sandbox delivers the
test lead's webhook to a real receiver process, and the doctor reads that receiver's spool."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from receiver_helpers import APP_SECRET, VERIFY_TOKEN, ReceiverProcess
from test_receiver_subscribe import (
    FAIL,
    OK,
    assert_no_secret_in_urls,
    cli,
    graph_sandbox,
    lines,
    write_config,
)

from fb_graph import DEFAULT_API_VERSION
from fb_graph.client import GraphClient
from fb_graph_sandbox import DEFAULT_TOKEN, EXPIRED_TOKEN, Sandbox

WAIT = "20"
SHORT_WAIT = "1.5"


@dataclass
class Setup:
    sb: Sandbox
    receiver: ReceiverProcess
    config: Path

    @property
    def pages(self) -> list[str]:
        return sorted(self.sb.data.page_ids)  # the doctor goes through them in this order

    def doctor(self, *args: str, expect: int) -> list[str]:
        result = cli("doctor", "--config", str(self.config), *args, expect=expect)
        assert_no_secret_in_urls(self.sb)
        return result.stdout.splitlines()

    def graph(self, token: str = DEFAULT_TOKEN) -> GraphClient:
        return GraphClient(access_token=token, api_url=self.sb.url, api_version=DEFAULT_API_VERSION)


@pytest.fixture
def setup(
    make_sandbox: Callable[..., Sandbox], receivers: Callable[..., ReceiverProcess], tmp_path: Path
) -> Iterator[Setup]:
    """Two Pages, a receiver process, the app subscribed at both levels to it."""
    sb = graph_sandbox(make_sandbox, pages=2)
    receiver = receivers()
    sb.set_webhook(receiver.url)
    yield Setup(sb, receiver, write_config(tmp_path, sb, receiver))


def test_all_is_well_with_a_test_lead_end_to_end(setup: Setup) -> None:
    sb = setup.sb
    first_forms = [sb.data.form_ids(page)[0] for page in setup.pages]
    older = setup.graph().post(f"{first_forms[0]}/test_leads")["id"]  # left by an earlier run

    out = setup.doctor("--wait", WAIT, expect=0)
    assert all(line.startswith(OK) for line in out), out
    assert out[0].startswith(f"{OK} token: a valid PAGE token of app {sb.app_id}, never expires")
    assert out[1].startswith(f"{OK} permissions: leads_retrieval, pages_manage_metadata")
    assert out[2:4] == [f"{OK} Page {page}: app installed with leadgen" for page in setup.pages]
    assert out[4] == (
        f"{OK} app subscription: leadgen to {setup.receiver.url} (include_values: "
        "see the self-test)"
    )
    assert out[5:7] == [
        f"{OK} Page {page}: leads readable (form {form})"
        for page, form in zip(setup.pages, first_forms, strict=True)
    ]
    tests = out[7:]
    assert len(tests) == 2 and all(
        "in the spool after" in t and "read back by id" in t for t in tests
    )
    made = [line.split("test lead ")[1].split()[0] for line in tests]
    assert older not in made
    # Stored by the receiver, then deleted (the tap skips it), the older one too.
    assert set(made) <= set(setup.receiver.spool_keys())
    for form in first_forms:
        assert sb.data.test_leads(sb.data.form_by_id[form]) == []


def test_a_page_without_leads_access_is_told_with_the_fix(setup: Setup) -> None:
    page_one, page_two = setup.pages
    setup.sb.leads_access(page_two, False)

    out = setup.doctor("--wait", WAIT, expect=1)
    failed = [line for line in out if line.startswith(FAIL)]
    assert failed == [
        f"{FAIL} Page {page_two}: the app cannot read its leads (form "
        f"{setup.sb.data.form_ids(page_two)[0]} answers 100/33): assign the app in the Page's "
        "Leads Access Manager (Meta Business Suite, Settings, Leads access).",
        f"{FAIL} self-test of Page {page_two} not run: fix its ✘ lines above first.",
    ]
    assert f"self-test of Page {page_one}: test lead" in out[-1] and out[-1].startswith(OK)


def test_an_app_not_installed_on_a_page(setup: Setup) -> None:
    page = setup.pages[0]
    setup.graph().call("DELETE", f"{page}/subscribed_apps")

    out = setup.doctor("--wait", WAIT, expect=1)
    assert (
        f"{FAIL} Page {page}: the app is not installed on it: run fb-leads-receiver "
        "subscribe." in out
    )
    assert f"{OK} Page {setup.pages[1]}: app installed with leadgen" in out


def test_receiver_not_running_fails_the_self_test(setup: Setup) -> None:
    setup.receiver.terminate()

    out = setup.doctor("--wait", SHORT_WAIT, expect=1)
    failed = lines(out, FAIL)
    assert len(failed) == 2 and len(lines(out, OK)) == 7
    for line in failed:
        assert (
            f"did not reach the spool in {SHORT_WAIT} s: check that fb-leads-receiver "
            f"serve runs at {setup.receiver.url} with this spool" in line
        )


def test_deliveries_without_values_are_told_then_fixed_by_subscribe_replace(
    setup: Setup,
) -> None:
    app = setup.graph(f"{setup.sb.app_id}|{APP_SECRET}")
    app.post(
        f"{setup.sb.app_id}/subscriptions",
        form={
            "object": "page",
            "callback_url": setup.receiver.url,
            "fields": "leadgen",
            "verify_token": VERIFY_TOKEN,  # and no include_values
        },
    )

    out = setup.doctor("--wait", "3", expect=1)
    for line in lines(out, FAIL):
        assert (
            "deliveries arrive without values, as the app is subscribed without "
            "include_values: run fb-leads-receiver subscribe --replace." in line
        )

    cli("subscribe", "--config", str(setup.config), "--replace", expect=0)
    setup.doctor("--wait", WAIT, expect=0)


def test_an_expired_token_stops_before_the_self_test(setup: Setup, tmp_path: Path) -> None:
    setup.config = write_config(tmp_path, setup.sb, setup.receiver, access_token=EXPIRED_TOKEN)

    out = setup.doctor(expect=1)
    assert out[0].startswith(
        f"{FAIL} token: the access token is not valid (Meta said: Error validating access token"
    )
    assert out[1] == f"{FAIL} permissions: not checked, as the token is not valid."
    assert out[-1] == (
        f"{FAIL} self-test not run: fix the ✘ lines above first, then run doctor again."
    )
    assert EXPIRED_TOKEN not in "\n".join(out)


def test_a_spool_that_is_not_the_receivers_is_told_before_any_test_lead(
    setup: Setup, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere" / "spool.db"
    setup.config = write_config(tmp_path, setup.sb, setup.receiver, spool=str(elsewhere))

    out = setup.doctor(expect=1)
    assert out[-1] == (
        f"{FAIL} self-test: the spool {elsewhere} does not exist here: run doctor "
        "in the receiver's working folder with its config (the same spool "
        "setting)."
    )
    assert lines(out, FAIL) == out[-1:] and not elsewhere.exists()
    assert all(r["path"].split("/")[-1] != "test_leads" for r in setup.sb.requests())
