"""The plugin blocks of meltano.yml pasted into a fresh Meltano project outside this repository:
`meltano install` from the wheels (as from any index), configured by Meltano's environment
variables only, and both legs with `meltano run` against the sandbox (docs/install.md)."""

from __future__ import annotations

import dataclasses
import json
import uuid
import zipfile
from pathlib import Path

import pytest
import yaml
from loop_expect import assert_warehouse_matches_sandbox, expected_events, received, view_rows
from pipeline_support import ROOT, loop_mod

pytestmark = pytest.mark.pipeline

# What a data engineer copies: our plugins and the warehouse plugins they run with.
PASTED = {
    "extractors": ("tap-fb-leads", "tap-postgres"),
    "loaders": ("target-postgres", "target-fb-leads-postgres", "target-fb-conversions"),
}


def pasted_project(where: Path) -> Path:
    """A new Meltano project with the blocks copied verbatim from this repository's meltano.yml
    (no environment config: every value comes from the variables below)."""
    ours = yaml.safe_load((ROOT / "meltano.yml").read_text())
    plugins = {
        kind: [p for p in ours["plugins"][kind] if p["name"] in names]
        for kind, names in PASTED.items()
    }
    assert [len(v) for v in plugins.values()] == [2, 3]
    project = {
        "version": 1,
        "project_id": str(uuid.uuid4()),
        "send_anonymous_usage_stats": False,
        "default_environment": "dev",
        "venv": {"backend": "uv"},
        "plugins": plugins,
        "environments": [{"name": "dev"}],
    }
    where.mkdir()
    (where / "meltano.yml").write_text(yaml.safe_dump(project, sort_keys=False))
    return where


def test_blocks_pasted_into_another_project_install_and_run(loop, tmp_path):
    sb = loop.sandbox
    wheels = tmp_path / "wheels"
    loop_mod.build_wheels(wheels)
    assert sorted(w.name.split("-")[0] for w in wheels.glob("*.whl")) == [
        "fb_graph", "fb_leads_receiver", "tap_fb_leads", "target_fb_conversions",
        "target_fb_leads_postgres",
    ]  # fmt: skip
    for wheel in wheels.glob("*.whl"):  # each wheel holds its own package only
        package, version = wheel.name.split("-")[:2]
        with zipfile.ZipFile(wheel) as archive:
            tops = {name.split("/")[0] for name in archive.namelist()}
        assert tops == {package, f"{package}-{version}.dist-info"}, (wheel.name, tops)

    warehouse = {  # Meltano's <PLUGIN>_<SETTING> variables, as in any Meltano project
        f"{plugin}_{key.upper()}": value
        for plugin in ("TAP_POSTGRES", "TARGET_POSTGRES")
        for key, value in (
            ("host", loop.env["WAREHOUSE_HOST"]),
            ("port", loop.env["WAREHOUSE_PORT"]),
            ("user", loop.env["WAREHOUSE_USER"]),
            ("password", loop.env["WAREHOUSE_PASSWORD"]),
            ("database", loop.env["WAREHOUSE_DATABASE"]),
        )
    }
    env = {
        k: v
        for k, v in loop.env.items()
        if not k.startswith(("SANDBOX_", "WAREHOUSE_", "MELTANO_SYS_DIR_ROOT", "MELTANO_ENV"))
    }
    env.update(
        warehouse,
        UV_FIND_LINKS=str(wheels),  # the wheels, where an index would be
        TAP_FB_LEADS_API_URL=sb.url,
        TAP_FB_LEADS_ACCESS_TOKEN=sb.token,
        TAP_FB_LEADS_PAGE_IDS=json.dumps(sb.data.page_ids),
        TARGET_FB_CONVERSIONS_API_URL=sb.url,
        TARGET_FB_CONVERSIONS_ACCESS_TOKEN=sb.token,
        TARGET_FB_CONVERSIONS_DATASET_ID=loop.env["SANDBOX_DATASET_ID"],
        TARGET_FB_CONVERSIONS_LEAD_EVENT_SOURCE="Test CRM",
        TARGET_FB_CONVERSIONS_FOLLOWUP_STREAMS='["crm-messenger_followups"]',
    )
    elsewhere = dataclasses.replace(loop, env=env, project=pasted_project(tmp_path / "elsewhere"))

    elsewhere.meltano("install", timeout=600)
    venv = tmp_path / "elsewhere" / ".meltano" / "extractors" / "tap-fb-leads" / "venv"
    site = next(venv.glob("lib/python*/site-packages"))
    assert (site / "tap_fb_leads").is_dir() and (site / "fb_graph").is_dir()
    assert not (site / "fb_graph_sandbox").exists()  # the sandbox is never in a plugin

    elsewhere.meltano("run", "tap-fb-leads", "target-postgres")
    assert_warehouse_matches_sandbox(elsewhere)
    # The leads jobs' loader, inheriting target-postgres: its TARGET_POSTGRES_* variables too.
    sb.add_leads(sb.data.form_ids()[0], 3)
    elsewhere.meltano("run", "tap-fb-leads", "target-fb-leads-postgres")
    assert_warehouse_matches_sandbox(elsewhere)

    loop.crm_sync()
    rows = view_rows(loop)
    elsewhere.meltano("run", "tap-postgres", "target-fb-conversions")
    events = sb.events()
    assert events and received(events) == expected_events(rows)
    assert {e["user_data"].get("lead_id") is not None for e in events} == {True}
