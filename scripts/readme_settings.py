"""Write each plugin's settings table (from `--about --format=markdown`) into README.md.

Usage: .venv/bin/python scripts/readme_settings.py [--check]
With --check, exit 1 when README.md is out of date instead of writing it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PLUGINS = ("tap-fb-leads", "target-fb-conversions")


def settings_table(executable: str) -> str:
    """The `## Settings` table that the plugin's `--about --format=markdown` prints."""
    about = subprocess.run(
        [str(Path(sys.executable).parent / executable), "--about", "--format=markdown"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    lines = about.split("## Settings", 1)[1].strip().splitlines()
    return "\n".join(line for line in lines if line.startswith("|"))


def render(readme: str) -> str:
    for plugin in PLUGINS:
        pattern = re.compile(
            rf"(<!-- settings:{plugin} -->\n)(?:.*?\n)?(<!-- /settings:{plugin} -->)", re.DOTALL
        )
        if not pattern.search(readme):
            raise SystemExit(f"README.md has no settings block for {plugin}: add the markers.")
        table = settings_table(plugin)
        readme = pattern.sub(lambda m, t=table: m.group(1) + t + "\n" + m.group(2), readme)
    return readme


def main() -> int:
    current = README.read_text(encoding="utf-8")
    wanted = render(current)
    if "--check" in sys.argv[1:]:
        if wanted != current:
            print("README.md settings tables are out of date: run scripts/readme_settings.py.")
            return 1
        return 0
    README.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
