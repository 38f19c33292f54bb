"""geo.py is what scripts/generate_geo.py makes from pycountry and its aliases (no drift)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_geo_py_is_generated_from_pycountry_and_the_aliases():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "generate_geo.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
