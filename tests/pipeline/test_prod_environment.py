"""The `prod` environment of meltano.yml, run for real: every value from the documented
environment variables, the warehouse over verified TLS, the target's ledger in the warehouse
(what docs/pipeline.md recommends in production). Only Meta's address is changed (to the
sandbox), with Meltano's own per-setting variables."""

from __future__ import annotations

import json

import pytest
from loop_expect import (
    assert_warehouse_matches_sandbox,
    check_hashes,
    expected_events,
    received,
    rows_by_key,
    view_rows,
)
from tls_front import TlsFront, make_certificate

from fb_graph_sandbox import DEFAULT_DATASET_ID

pytestmark = pytest.mark.pipeline


@pytest.fixture
def tls_warehouse(warehouse, tmp_path):
    _wh, settings = warehouse
    cert, key = make_certificate(tmp_path)
    front = TlsFront(settings.port, cert, key)
    yield front, cert
    front.close()


def prod_env(loop, port: int, root_cert) -> dict:
    sb = loop.sandbox
    s = loop.settings
    ledger = (f"postgresql+psycopg://{s.user}:{s.password}@127.0.0.1:{port}/{s.database}"
              f"?sslmode=verify-full&sslrootcert={root_cert}")  # fmt: skip
    env = {k: v for k, v in loop.env.items() if not k.startswith("SANDBOX_")}
    env.update({
        "MELTANO_ENVIRONMENT": "prod",
        "FB_PAGE_ACCESS_TOKEN": sb.token,
        "FB_PAGE_IDS": json.dumps(sb.data.page_ids),
        "FB_CAPI_ACCESS_TOKEN": sb.token,
        "FB_CRM_DATASET_ID": DEFAULT_DATASET_ID,
        "CRM_NAME": "HubSpot",
        "WAREHOUSE_PORT": str(port),
        "WAREHOUSE_SSL_ROOT_CERT": str(root_cert),
        "TARGET_FB_CONVERSIONS_LEDGER": ledger,
        # Meta's address: the only setting not taken from the prod environment.
        "TAP_FB_LEADS_API_URL": sb.url,
        "TARGET_FB_CONVERSIONS_API_URL": sb.url,
    })  # fmt: skip
    return env


def test_prod_environment_runs_both_jobs_over_verified_tls(loop, tls_warehouse, tmp_path):
    front, cert = tls_warehouse
    loop.env = prod_env(loop, front.port, cert)
    with loop.connect() as conn:  # the loop fixture empties fb_leads and crm, not the ledger
        conn.execute("DROP TABLE IF EXISTS fb_conversions_ledger")

    # A server certificate the CA file does not vouch for: the warehouse leg refuses it.
    other_ca, _ = make_certificate(tmp_path, "other")
    refused = loop.meltano(
        "run", "leads-to-warehouse", check=False,
        extra_env={"WAREHOUSE_SSL_ROOT_CERT": str(other_ca)},
    )  # fmt: skip
    assert refused.returncode != 0
    assert "certificate verify failed" in refused.stdout + refused.stderr
    assert front.tls_sessions == 0

    loop.meltano("run", "leads-to-warehouse")
    assert_warehouse_matches_sandbox(loop)
    loop.crm_sync()
    rows = view_rows(loop)
    loop.meltano("run", "stages-to-meta")
    events = loop.sandbox.events()
    assert received(events) == expected_events(rows)
    by_key = rows_by_key(rows)
    for event in events:
        key = (str(event["user_data"]["lead_id"]), event["event_name"], event["event_time"])
        check_hashes(event, by_key[key], source="HubSpot")

    # The ledger is a table in the warehouse: a rerun sends nothing.
    (acknowledged,) = loop.query("SELECT count(*) FROM fb_conversions_ledger")[0]
    assert acknowledged == len(events) > 0
    loop.meltano("run", "stages-to-meta")
    assert len(loop.sandbox.events()) == len(events)

    # Both warehouse plugins went through TLS only, and the state is the prod environment's.
    assert front.tls_sessions >= 2 and front.refused_plain == 0
    states = loop.state_ids()
    assert {"prod:tap-fb-leads-to-target-fb-leads-postgres",
            "prod:tap-postgres-to-target-fb-conversions"} <= set(states)  # fmt: skip
