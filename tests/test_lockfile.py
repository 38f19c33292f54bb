"""requirements.lock (what the README's commands install) agrees with the distributions'
pyproject.toml files (listed in requirements.in) and the workspace's dev group."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - pytest installs tomli on Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")
PYTHONS = ("3.10", "3.11", "3.12", "3.13")


def locked() -> dict[str, list[tuple[Version, Marker | None]]]:
    pins: dict[str, list[tuple[Version, Marker | None]]] = {}
    for line in (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines():
        match = PIN.match(line)
        if match:
            name, version, marker = match.groups()
            pins.setdefault(canonicalize_name(name), []).append(
                (Version(version), Marker(marker) if marker else None)
            )
    return pins


def distributions() -> list[Path]:
    """The folders requirements.in installs (``-e ./tap-fb-leads``, extras stripped)."""
    lines = (ROOT / "requirements.in").read_text(encoding="utf-8").splitlines()
    return [
        ROOT / line.removeprefix("-e ").split("[")[0] for line in lines if line.startswith("-e ")
    ]


def declared() -> list[Requirement]:
    local = set()
    requirements = []
    for folder in distributions():
        project = tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))["project"]
        local.add(canonicalize_name(project["name"]))
        requirements += project["dependencies"]
        for extra in project.get("optional-dependencies", {}).values():
            requirements += extra
    workspace = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    requirements += workspace["dependency-groups"]["dev"]
    parsed = [Requirement(r) for r in requirements]
    return [r for r in parsed if canonicalize_name(r.name) not in local]


def test_requirements_in_lists_every_distribution():
    found = {p.parent for p in ROOT.glob("*/pyproject.toml")}
    assert set(distributions()) == found


def test_every_declared_requirement_is_locked_within_its_range_for_every_python():
    pins = locked()
    assert len(pins) > 50  # the whole tree, not only the direct dependencies
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is declared in pyproject.toml but not in requirements.lock"
        for python in PYTHONS:
            environment = {"python_version": python, "python_full_version": f"{python}.0"}
            chosen = [v for v, m in pins[name] if m is None or m.evaluate(environment)]
            assert len(chosen) == 1, (name, python, chosen)
            assert requirement.specifier.contains(chosen[0], prereleases=True), (
                f"requirements.lock has {name}=={chosen[0]} for Python {python}, outside "
                f"pyproject.toml's {requirement.specifier}: regenerate it (CONTRIBUTING.md)"
            )


def test_every_lock_line_is_hashed():
    text = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    pinned = [line for line in text.splitlines() if PIN.match(line)]
    assert pinned and all(line.rstrip().endswith("\\") for line in pinned)
    assert text.count("--hash=sha256:") >= len(pinned)
