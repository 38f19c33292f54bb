"""A loader that dies mid-run: the tap ends with one sentence, not a traceback."""

from __future__ import annotations

import json
import subprocess

from tap_helpers import TAP, tap_config


def test_loader_gone_mid_run_is_one_sentence(make_sandbox, tmp_path):
    sb = make_sandbox(forms_per_page=1, leads_per_form=3000)
    config = tmp_path / "config.json"
    config.write_text(json.dumps(tap_config(sb)))
    tap = subprocess.Popen(
        [*TAP, "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert tap.stdout is not None and tap.stderr is not None
    tap.stdout.readline()  # the loader reads one message, then dies
    tap.stdout.close()
    stderr = tap.stderr.read()
    assert tap.wait(timeout=60) == 1
    assert "Traceback" not in stderr
    assert "BrokenPipeError" not in stderr
    assert "stopped before the end" in stderr
    assert sb.token not in stderr
