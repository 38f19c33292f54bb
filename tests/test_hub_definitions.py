"""The Meltano Hub definitions in hub/ agree with the plugins' `--about --format=json`, with
Hub's JSON schema (vendored in hub/schemas/) and with meltano.yml."""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

ROOT = Path(__file__).resolve().parent.parent
HUB = ROOT / "hub"
# Plugin -> (Hub's plugin type, its definition file).
DEFINITIONS = {
    "tap-fb-leads": ("extractors", HUB / "_data/meltano/extractors/tap-fb-leads/fb-leads.yml"),
    "target-fb-conversions": (
        "loaders",
        HUB / "_data/meltano/loaders/target-fb-conversions/fb-leads.yml",
    ),
}
PLUGINS = list(DEFINITIONS)
# JSON schema type -> Meltano setting kind (Hub's kinds: a JSON number is `decimal`).
KINDS = {
    "string": "string",
    "integer": "integer",
    "number": "decimal",
    "boolean": "boolean",
    "object": "object",
    "array": "array",
}


@functools.cache
def about(name: str) -> dict[str, Any]:
    result = subprocess.run(
        [str(Path(sys.executable).parent / name), "--about", "--format=json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def hub(name: str) -> dict[str, Any]:
    return yaml.safe_load(DEFINITIONS[name][1].read_text(encoding="utf-8"))


def hub_settings(name: str) -> dict[str, dict[str, Any]]:
    return {setting["name"]: setting for setting in hub(name)["settings"]}


def meltano_plugin(name: str) -> dict[str, Any]:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    plugins = project["plugins"][DEFINITIONS[name][0]]
    return next(plugin for plugin in plugins if plugin["name"] == name)


def expected_kind(schema: dict[str, Any]) -> str:
    """The kind Hub (and hub-utils, which writes Hub's files from --about) gives a setting."""
    types = schema.get("type", "string")
    types = [types] if isinstance(types, str) else types
    json_type = next(t for t in types if t != "null")
    if json_type == "string" and "enum" in schema:
        return "options"
    if json_type == "string" and schema.get("format") in ("date-time", "date"):
        return "date_iso8601"
    return KINDS[json_type]


def is_secret(schema: dict[str, Any]) -> bool:
    return bool(schema.get("secret") or schema.get("writeOnly"))


@pytest.mark.parametrize("name", PLUGINS)
def test_hub_settings_are_the_about_settings(name):
    names = [setting["name"] for setting in hub(name)["settings"]]
    assert len(names) == len(set(names)), f"{name}: a setting is listed twice"
    reported = set(about(name)["settings"]["properties"])
    assert set(names) == reported, (
        f"hub/ {name}: missing {sorted(reported - set(names))}, "
        f"not in --about {sorted(set(names) - reported)}"
    )


@pytest.mark.parametrize("name", PLUGINS)
def test_hub_settings_kinds_secrets_defaults_and_descriptions_are_about_s(name):
    properties = about(name)["settings"]["properties"]
    for key, setting in hub_settings(name).items():
        schema = properties[key]
        where = f"hub/ {name}.{key}"
        assert setting.get("kind") == expected_kind(schema), (
            f"{where}: kind {setting.get('kind')!r}, --about says {schema.get('type')!r}"
        )
        assert setting.get("kind") != "password", f"{where}: use sensitive: true, not password"
        assert bool(setting.get("sensitive")) == is_secret(schema), (
            f"{where}: sensitive {setting.get('sensitive')!r}, --about secret {is_secret(schema)}"
        )
        if schema.get("default") is not None:
            assert setting.get("value") == schema["default"], f"{where}: default differs"
        else:
            assert "value" not in setting, f"{where}: a default the plugin does not have"
        assert setting.get("description") == schema.get("description"), f"{where}: description"
        assert setting.get("label"), f"{where}: no label"
        if "enum" in schema:
            assert [o["value"] for o in setting["options"]] == schema["enum"], where
            assert all(o.get("label") for o in setting["options"]), where
        else:
            assert "options" not in setting, where


@pytest.mark.parametrize("name", PLUGINS)
def test_hub_capabilities_and_pythons_are_about_s(name):
    definition, info = hub(name), about(name)
    capabilities = definition["capabilities"]
    assert len(capabilities) == len(set(capabilities)), f"hub/ {name}: a capability twice"
    assert set(capabilities) == set(info["capabilities"]), (
        f"hub/ {name}: missing {sorted(set(info['capabilities']) - set(capabilities))}, "
        f"not in --about {sorted(set(capabilities) - set(info['capabilities']))}"
    )
    assert definition["supported_python_versions"] == info["supported_python_versions"]
    # Meltano parses the SDK's JSON log lines only for a plugin with this capability.
    if "structured-logging" in capabilities:
        assert definition["log_parser"] == "singer-sdk"


@pytest.mark.parametrize("name", PLUGINS)
def test_every_settings_group_holds_the_required_settings(name):
    required = set(about(name)["settings"].get("required", []))
    groups = hub(name)["settings_group_validation"]
    assert groups, f"hub/ {name}: no settings_group_validation"
    for group in groups:
        assert required <= set(group), f"hub/ {name}: {group} lacks {sorted(required)}"
        assert set(group) <= set(hub_settings(name)), f"hub/ {name}: {group} unknown names"


@functools.cache
def hub_schema_registry() -> Registry:
    resources = []
    for path in sorted((HUB / "schemas").rglob("*.schema.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        resources.append((schema["$id"], Resource.from_contents(schema, DRAFT7)))
    return Registry().with_resources(resources)


@pytest.mark.parametrize("name", PLUGINS)
def test_hub_definition_is_valid_against_hubs_json_schema(name):
    """As Hub's CI does it (utility_scripts/plugin_definitions/plugin_schema_validate.py)."""
    plugin_type = DEFINITIONS[name][0]
    schema_path = HUB / "schemas" / "plugin_definitions" / f"{plugin_type}.schema.json"
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    validator = Draft7Validator(
        schema, registry=hub_schema_registry(), format_checker=Draft7Validator.FORMAT_CHECKER
    )
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(hub(name))]
    assert not errors, f"hub/ {name} is not valid for Hub:\n" + "\n".join(errors)


def test_the_schema_check_can_fail():
    """The validation above is not vacuous: a kind Hub does not know is refused."""
    schema_path = HUB / "schemas" / "plugin_definitions" / "extractors.schema.json"
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    validator = Draft7Validator(schema, registry=hub_schema_registry())
    broken = hub("tap-fb-leads")
    broken["settings"][0]["kind"] = "number"
    assert any("'number' is not one of" in e.message for e in validator.iter_errors(broken))


def test_the_vendored_hub_schema_is_unchanged():
    sums = (HUB / "schemas" / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    listed = {}
    for line in sums:
        digest, path = line.split(maxsplit=1)
        listed[path] = digest
    present = {p.relative_to(HUB / "schemas").as_posix() for p in (HUB / "schemas").rglob("*.json")}
    assert set(listed) == present
    for path, digest in listed.items():
        actual = hashlib.sha256((HUB / "schemas" / path).read_bytes()).hexdigest()
        assert actual == digest, f"hub/schemas/{path} differs from the copy of meltano/hub"


def unsorted_keys(node: Any, where: str = "") -> list[str]:
    """Mappings whose keys are not in order (Hub's yamllint has key-ordering enabled)."""
    found = []
    if isinstance(node, dict):
        if list(node) != sorted(node):
            found.append(where or "(top)")
        for key, value in node.items():
            found += unsorted_keys(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += unsorted_keys(value, f"{where}[{index}]")
    return found


@pytest.mark.parametrize("name", PLUGINS)
def test_hub_definition_is_laid_out_as_hub_wants(name):
    path = DEFINITIONS[name][1]
    definition = hub(name)
    info = about(name)
    # Hub's yaml_check_names.py: the folder is the plugin's name; the file is the variant.
    assert path.parent.name == definition["name"] == info["name"] == name
    assert path.name == f"{definition['variant']}.yml"
    assert definition["executable"] == name
    assert definition["namespace"] == meltano_plugin(name)["namespace"]
    # Hub's formatter (hub-utils yaml_lint.py): keys, settings, capabilities, groups sorted.
    assert not unsorted_keys(definition), f"hub/ {name}: unsorted keys"
    names = [setting["name"] for setting in definition["settings"]]
    assert names == sorted(names), f"hub/ {name}: settings not sorted by name"
    assert definition["capabilities"] == sorted(definition["capabilities"])
    assert all(group == sorted(group) for group in definition["settings_group_validation"])
    # pip_url installs the plugin's own folder of the repository named in repo, after the
    # shared Graph code's folder (fb-graph, which the plugin depends on and no index serves).
    folders = [f"git+{definition['repo']}#subdirectory={d}" for d in ("fb-graph", name)]
    assert definition["pip_url"] == " ".join(folders)
    for folder in ("fb-graph", name):
        assert (ROOT / folder / "pyproject.toml").is_file(), folder
    assert (ROOT / name).is_dir()
    text = path.read_text(encoding="utf-8")
    assert not [line for line in text.splitlines() if line != line.rstrip()], "trailing spaces"


@pytest.mark.parametrize("name", PLUGINS)
def test_meltano_yml_declares_the_hub_settings_with_the_same_kinds(name):
    declared = {setting["name"]: setting for setting in meltano_plugin(name)["settings"]}
    ours = hub_settings(name)
    assert set(declared) == set(ours), (
        f"meltano.yml {name}: missing {sorted(set(ours) - set(declared))}, "
        f"not in hub/ {sorted(set(declared) - set(ours))}"
    )
    for key, setting in ours.items():
        assert declared[key].get("kind") == setting["kind"], (
            f"{name}.{key}: meltano.yml kind {declared[key].get('kind')!r}, "
            f"hub/ kind {setting['kind']!r}"
        )
        assert bool(declared[key].get("sensitive")) == bool(setting.get("sensitive")), (
            f"{name}.{key}: sensitive differs between meltano.yml and hub/"
        )


def test_hub_select_is_meltano_yml_s_and_picks_the_tap_s_default_streams(tmp_path, sandbox):
    """Meltano selects every stream when a plugin has no select rule; the Hub definition
    selects what the tap selects by default without a webhook spool (messenger_conversations
    is opt-in, messenger_leads needs webhook_spool), like meltano.yml."""
    select = hub("tap-fb-leads")["select"]
    assert select == meltano_plugin("tap-fb-leads")["select"]
    config = tmp_path / "config.json"
    # --discover reads the Pages' forms (their questions): the sandbox serves them.
    settings = {"access_token": sandbox.token, "page_ids": sandbox.data.page_ids}
    config.write_text(json.dumps({**settings, "api_url": sandbox.url}))
    result = subprocess.run(
        [str(Path(sys.executable).parent / "tap-fb-leads"), "--config", str(config), "--discover"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    streams = json.loads(result.stdout)["streams"]
    by_default = {
        stream["tap_stream_id"]
        for stream in streams
        for entry in stream["metadata"]
        if entry["breadcrumb"] == [] and entry["metadata"].get("selected-by-default")
    }
    selected = {
        stream["tap_stream_id"]
        for stream in streams
        if any(
            fnmatch.fnmatchcase(stream["tap_stream_id"], rule.split(".", 1)[0])
            for rule in select
            if not rule.startswith("!")
        )
    }
    assert selected == by_default
    assert {"forms", "leads"} <= selected
    assert "messenger_conversations" not in selected


def test_meltano_adds_both_definitions_and_passes_settings_typed(tmp_path):
    """`meltano add --from-ref <file>` (what Hub's CI runs on a new definition) accepts both
    files, and Meltano then hands the plugins typed values set through environment variables."""
    meltano = str(Path(sys.executable).parent / "meltano")
    # Nothing of the caller's Meltano project or plugin settings.
    prefixes = ("MELTANO_", "TAP_FB_LEADS_", "TARGET_FB_CONVERSIONS_")
    env = {key: value for key, value in os.environ.items() if not key.startswith(prefixes)}
    env["MELTANO_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    env["MELTANO_SYS_DIR_ROOT"] = str(tmp_path / "sys")
    env["MELTANO_DATABASE_URI"] = f"sqlite:///{tmp_path / 'meltano.db'}"
    project = tmp_path / "project"
    project.mkdir()
    (project / "meltano.yml").write_text("project_id: hub-definitions-test\n")
    for name, (plugin_type, path) in DEFINITIONS.items():
        added = subprocess.run(
            [meltano, "add", "--no-install", "--from-ref", str(path), plugin_type[:-1], name],
            cwd=project, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr[-2000:]
    added_project = yaml.safe_load((project / "meltano.yml").read_text(encoding="utf-8"))
    for name, (plugin_type, _) in DEFINITIONS.items():
        (plugin,) = added_project["plugins"][plugin_type]
        kinds = {setting["name"]: setting["kind"] for setting in plugin["settings"]}
        assert kinds == {key: s["kind"] for key, s in hub_settings(name).items()}
    # Not a decimal setting: Meltano 4.4.1 turns a decimal's environment variable into a
    # Decimal that it then cannot write to the plugin's config file (docs/meltano-hub.md).
    values = {
        "tap-fb-leads": {"PAGE_IDS": '["1", "2"]', "PAGE_SIZE": "250", "POLL_FORMS": "false",
                         "START_DATE": "2026-01-01T00:00:00Z", "FLATTENING_ENABLED": "true"},
        "target-fb-conversions": {"STAGE_MAPPING": '{"won": "CONVERTED"}', "DRY_RUN": "true",
                                  "API": "offline_conversions", "FOLLOWUP_STREAMS": '["f"]'},
    }  # fmt: skip
    expected = {
        "tap-fb-leads": {"page_ids": ["1", "2"], "page_size": 250, "poll_forms": False,
                         "start_date": "2026-01-01T00:00:00Z", "flattening_enabled": True,
                         "retry_backoff_seconds": 1.0},
        "target-fb-conversions": {"stage_mapping": {"won": "CONVERTED"}, "dry_run": True,
                                  "api": "offline_conversions", "followup_streams": ["f"],
                                  "request_timeout": 60.0, "hash_external_id": True},
    }  # fmt: skip
    for name in DEFINITIONS:
        prefix = name.upper().replace("-", "_") + "_"
        dumped = subprocess.run(
            [meltano, "invoke", "--no-install", "--dump=config", name],
            cwd=project, capture_output=True, text=True, timeout=120,
            env={**env, **{prefix + key: value for key, value in values[name].items()}},
        )  # fmt: skip
        assert dumped.returncode == 0, dumped.stderr[-2000:]
        config = json.loads(dumped.stdout)
        assert {key: config.get(key) for key in expected[name]} == expected[name]
