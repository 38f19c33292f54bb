"""Paths and the project's script modules, shared by the pipeline tests and their fixtures."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MELTANO = str(BIN / "meltano")
# The sandbox's clock: a little in the past, so no generated lead lies in the future.
SANDBOX_NOW = int(time.time()) - 600
LEADS_PER_FORM = 40
RUN_TIMEOUT = 120  # a normal run here takes under 20 s


def load_module(name: str, path: Path):
    """Import one of the project's scripts (they are not in a package)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


warehouse_mod = load_module("fb_leads_warehouse", ROOT / "scripts" / "warehouse.py")
crm_mod = load_module("sample_crm", ROOT / "crm" / "sample_crm.py")
loop_mod = load_module("fb_leads_loop", ROOT / "scripts" / "loop.py")


def meltano_sys_dir(tmp_path: Path) -> Path:
    """This test's own Meltano system directory, sharing the installed plugins."""
    return loop_mod.meltano_sys_dir(tmp_path)
