"""meltano.yml stays in sync with the plugins' own settings (`--about --format=json`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml
from pipeline_support import MELTANO, ROOT, meltano_sys_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - pytest installs tomli on Python 3.10
    import tomli as tomllib

pytestmark = pytest.mark.pipeline

MELTANO_YML = yaml.safe_load((ROOT / "meltano.yml").read_text())
PLUGINS = {
    plugin["name"]: (kind, plugin)
    for kind in ("extractors", "loaders", "utilities")
    for plugin in MELTANO_YML["plugins"][kind]
}
# JSON schema type -> the Meltano kinds that hold it.
KINDS = {
    "string": {"string", "options", "date_iso8601", "password", "file", "email"},
    "integer": {"integer"},
    "number": {"decimal"},
    "boolean": {"boolean"},
    "array": {"array"},
    "object": {"object"},
}


def about(name: str) -> dict:
    kind, plugin = PLUGINS[name]
    exe = ROOT / ".meltano" / kind / name / "venv" / "bin" / plugin["executable"]
    result = subprocess.run(
        [str(exe), "--about", "--format=json"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def json_type(schema: dict) -> str:
    types = schema.get("type", "string")
    types = [types] if isinstance(types, str) else types
    return next(t for t in types if t != "null")


def declared(name: str) -> dict[str, dict]:
    return {s["name"]: s for s in PLUGINS[name][1]["settings"]}


@pytest.mark.parametrize("name", ["tap-fb-leads", "target-fb-conversions"])
def test_our_plugins_settings_match_about(meltano_installed, name):
    info = about(name)
    props = info["settings"]["properties"]
    ours = set(props)  # the SDK's own settings too: Meltano then passes them typed
    in_yml = declared(name)
    assert set(in_yml) == ours, (
        f"meltano.yml {name}: missing {sorted(ours - set(in_yml))}, "
        f"unknown {sorted(set(in_yml) - ours)}"
    )
    for key, setting in in_yml.items():
        schema = props[key]
        secret = bool(schema.get("secret") or schema.get("writeOnly"))
        assert bool(setting.get("sensitive")) == secret, f"{name}.{key}: sensitive != secret"
        assert setting["kind"] in KINDS[json_type(schema)], f"{name}.{key}: kind {setting['kind']}"
        # The plugin's default is declared too (`meltano config list` shows it), and equal.
        if schema.get("default") is not None:
            assert setting.get("value") == schema["default"], f"{name}.{key}: default differs"
        else:
            assert "value" not in setting, f"{name}.{key}: a default the plugin does not have"
        assert setting.get("description"), f"{name}.{key}: no description"
        if setting["kind"] == "options" and "enum" in schema:
            assert {o["value"] for o in setting["options"]} == set(schema["enum"])
    required = set(info["settings"].get("required", []))
    grouped = {key for group in PLUGINS[name][1].get("settings_group_validation", [])
               for key in group}  # fmt: skip
    assert required <= grouped, f"{name}: required {sorted(required - grouped)} not validated"
    # Capabilities claimed in meltano.yml are ones the plugin has.
    assert set(PLUGINS[name][1]["capabilities"]) <= set(info["capabilities"])


@pytest.mark.parametrize("name", ["tap-postgres", "target-postgres"])
def test_warehouse_plugins_declare_real_settings(meltano_installed, name):
    info = about(name)
    props = info["settings"]["properties"]
    in_yml = declared(name)
    assert set(in_yml) <= set(props), f"{name}: unknown {sorted(set(in_yml) - set(props))}"
    for key, schema in props.items():
        if schema.get("secret") or schema.get("writeOnly"):
            assert in_yml.get(key, {}).get("sensitive"), f"{name}.{key} must be sensitive"
    for key in ("password", "sqlalchemy_url"):
        assert in_yml[key]["sensitive"], f"{name}.{key} must be sensitive"
    assert set(PLUGINS[name][1]["capabilities"]) <= set(info["capabilities"])


def test_pins_jobs_environments_and_schedules():
    pins = {name: plugin[1].get("pip_url") for name, plugin in PLUGINS.items()}
    assert pins["target-postgres"] == "meltanolabs-target-postgres==0.8.1"
    assert pins["tap-postgres"] == "meltanolabs-tap-postgres[msgspec]==0.10.0"
    assert pins["target-snowflake"] == "meltanolabs-target-snowflake==0.20.4"
    # Ours by name and version, as any index would serve them (the version of their folder).
    for name, pin in (
        ("tap-fb-leads", "tap-fb-leads=={}"),
        ("target-fb-conversions", "target-fb-conversions[postgres]=={}"),
        ("fb-leads-receiver", "fb-leads-receiver=={}"),
        ("target-fb-leads-postgres", "target-fb-leads-postgres=={}"),
    ):
        project = tomllib.loads((ROOT / name / "pyproject.toml").read_text())["project"]
        assert pins[name] == pin.format(project["version"]), f"{name}: pin its folder's version"
    snowflake = declared("target-snowflake")
    for key in ("password", "private_key", "private_key_passphrase", "oauth_access_token"):
        assert snowflake[key]["sensitive"]

    jobs = {job["name"]: job["tasks"] for job in MELTANO_YML["jobs"]}
    assert jobs == {
        "leads-to-warehouse": ["tap-fb-leads target-fb-leads-postgres"],
        "webhook-leads-to-warehouse": ["tap-fb-leads--webhooks target-fb-leads-postgres"],
        "stages-to-meta": ["tap-postgres target-fb-conversions"],
    }
    webhooks = PLUGINS["tap-fb-leads--webhooks"][1]
    assert webhooks["inherit_from"] == "tap-fb-leads"
    assert webhooks["config"] == {"poll_forms": False}
    assert {s["job"] for s in MELTANO_YML["schedules"]} == set(jobs)
    assert MELTANO_YML["default_environment"] == "sandbox"
    assert {env["name"] for env in MELTANO_YML["environments"]} == {"sandbox", "prod"}

    # No secret is written in the file: every sensitive setting's value comes from the
    # environment ($VAR) wherever it is configured.
    def walk(configs):
        for plugin_kind in ("extractors", "loaders", "utilities"):
            for plugin in configs.get(plugin_kind, []):
                yield plugin["name"], plugin.get("config", {})

    places = [walk(MELTANO_YML["plugins"])] + [
        walk(env["config"]["plugins"]) for env in MELTANO_YML["environments"]
    ]
    for place in places:
        for name, config in place:
            for key, value in config.items():
                parent = PLUGINS[name][1].get("inherit_from", name)
                if declared(parent).get(key, {}).get("sensitive"):
                    assert str(value).startswith("$"), f"{name}.{key} holds a literal secret"


def test_tap_postgres_reads_the_view_and_the_followups_incrementally():
    plugin = PLUGINS["tap-postgres"][1]
    assert plugin["select"] == ["crm-conversion_events.*", "crm-messenger_followups.*"]
    assert plugin["metadata"]["crm-conversion_events"] == {
        "replication-method": "INCREMENTAL",
        "replication-key": "stage_changed_at",
    }
    assert plugin["metadata"]["crm-messenger_followups"] == {
        "replication-method": "INCREMENTAL",
        "replication-key": "created_at",
    }
    # The target sends that stream's rows as follow-ups, not as stage events: a setting of the
    # example CRM, so of the environments; the plugin blocks carry no CRM's values (pasteable).
    for environment in MELTANO_YML["environments"]:
        loaders = {p["name"]: p for p in environment["config"]["plugins"]["loaders"]}
        config = loaders["target-fb-conversions"]["config"]
        assert config["followup_streams"] == ["crm-messenger_followups"]
        assert config["lead_event_source"] in ("ExampleCRM", "$CRM_NAME")
    for name in ("tap-fb-leads", "target-fb-conversions", "fb-leads-receiver"):
        pasted = PLUGINS[name][1].get("config") or {}
        assert set(pasted) <= {"rejects_path", "ledger"}, f"{name}: keep this project's values out"


def test_meltano_reads_both_schedules_and_stages_go_daily(tmp_path):
    """`meltano schedule list` parses the schedules; stage changes go to Meta at least daily
    (Meta refuses events older than 7 days and wants uploads daily)."""
    result = subprocess.run(
        [MELTANO, "schedule", "list", "--format=json"], cwd=ROOT, capture_output=True, text=True,
        timeout=120, env={**os.environ, "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
                          "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path / 'meltano.db'}"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    schedules = {s["job"]["name"]: s for s in json.loads(result.stdout)["schedules"]["job"]}
    assert set(schedules) == {"leads-to-warehouse", "webhook-leads-to-warehouse", "stages-to-meta"}
    for schedule in schedules.values():
        minute, hour, day, month, weekday = schedule["cron_interval"].split()
        assert (day, month, weekday) == ("*", "*", "*"), f"{schedule['name']} skips days"
        assert minute.isdigit() or minute == "*"
        assert hour.isdigit() or hour == "*"
    # The leads the webhooks announced reach the warehouse within about a minute.
    assert schedules["webhook-leads-to-warehouse"]["cron_interval"] == "* * * * *"
    # Leads come in before stage changes go out: hourly loads, a daily reverse leg.
    assert schedules["leads-to-warehouse"]["cron_interval"].split()[1] == "*"


@pytest.mark.parametrize(
    ("plugin", "env", "expected"),
    [
        ("tap-fb-leads", {"TAP_FB_LEADS_FLATTENING_ENABLED": "true",
                          "TAP_FB_LEADS_FLATTENING_MAX_DEPTH": "2"},
         {"flattening_enabled": True, "flattening_max_depth": 2}),
        ("target-fb-conversions", {"TARGET_FB_CONVERSIONS_VALIDATE_RECORDS": "false",
                                   "TARGET_FB_CONVERSIONS_FLATTENING_ENABLED": "false"},
         {"validate_records": False, "flattening_enabled": False}),
    ],
)  # fmt: skip
def test_the_sdk_settings_reach_the_plugins_typed(meltano_installed, tmp_path, plugin, env,
                                                  expected):  # fmt: skip
    """`meltano config set tap-fb-leads flattening_enabled true` (or its variable) must give
    the plugin a boolean: an undeclared setting arrives as the string 'true' and fails."""
    result = subprocess.run(
        [MELTANO, "--environment=sandbox", "invoke", "--dump=config", plugin], cwd=ROOT,
        capture_output=True, text=True, timeout=120,
        env={**os.environ, **env, "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
             "MELTANO_SYS_DIR_ROOT": str(meltano_sys_dir(tmp_path)),
             "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path / 'meltano.db'}"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    config = json.loads(result.stdout)
    assert {key: config.get(key) for key in expected} == expected


def test_every_prod_variable_is_documented():
    """The prod environment and target-snowflake read only variables docs/pipeline.md lists."""
    import re

    docs = (ROOT / "docs" / "pipeline.md").read_text()
    prod = next(env for env in MELTANO_YML["environments"] if env["name"] == "prod")
    text = json.dumps(prod) + json.dumps(PLUGINS["target-snowflake"][1].get("config", {}))
    variables = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", text)) - {"MELTANO_PROJECT_ROOT"}
    assert {"FB_PAGE_ACCESS_TOKEN", "FB_CRM_DATASET_ID", "WAREHOUSE_SSL_ROOT_CERT",
            "SNOWFLAKE_ACCOUNT"} <= variables  # fmt: skip
    undocumented = sorted(v for v in variables if f"`{v}`" not in docs)
    assert not undocumented, f"docs/pipeline.md does not list {undocumented}"


def test_the_leads_loader_bulk_loads_and_only_it_skips_validation():
    """The leads jobs load with target-fb-leads-postgres, which inherits target-postgres'
    warehouse and settings; target-postgres loads with COPY and skips the per-record schema
    check: it only receives tap-fb-leads' typed records; no other plugin turns validation off."""
    config = PLUGINS["target-postgres"][1]["config"]
    assert config["use_copy"] is True and config["validate_records"] is False
    assert config["load_method"] == "upsert"
    assert PLUGINS["target-fb-leads-postgres"][1]["inherit_from"] == "target-postgres"
    jobs = [task for job in MELTANO_YML["jobs"] for task in job["tasks"]]
    loaders = {"target-postgres", "target-fb-leads-postgres"}
    assert {task.split()[0] for task in jobs if task.split()[1] in loaders} == {
        "tap-fb-leads", "tap-fb-leads--webhooks"
    }  # fmt: skip
    assert {task.split()[1] for task in jobs if task.split()[0].startswith("tap-fb-leads")} == {
        "target-fb-leads-postgres"
    }  # fmt: skip
    others = [(name, plugin[1]) for name, plugin in PLUGINS.items() if name != "target-postgres"]
    others += [
        (p["name"], p)
        for env in MELTANO_YML["environments"]
        for kind in ("extractors", "loaders")
        for p in env["config"]["plugins"][kind]
    ]
    for name, plugin in others:
        assert plugin.get("config", {}).get("validate_records", True) is True, name
