"""fb-leads-receiver as the Meltano utility of meltano.yml: `meltano invoke fb-leads-receiver`."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess

import pytest
import requests
from pipeline_support import MELTANO, ROOT, meltano_sys_dir

pytestmark = pytest.mark.pipeline


def test_meltano_invoke_serves_stores_and_stops(meltano_installed, tmp_path):
    secret = "receiver-test-secret"
    spool = tmp_path / "spool.db"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FB_LEADS_RECEIVER_")},
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path / 'meltano.db'}",
        "MELTANO_SYS_DIR_ROOT": str(meltano_sys_dir(tmp_path)),
        # Meltano hands each setting to the utility as FB_LEADS_RECEIVER_<NAME>.
        "FB_LEADS_RECEIVER_APP_SECRET": secret,
        "FB_LEADS_RECEIVER_VERIFY_TOKEN": "receiver-test-verify",
        "FB_LEADS_RECEIVER_SPOOL": str(spool),
    }
    proc = subprocess.Popen(
        [MELTANO, "invoke", "fb-leads-receiver", "serve", "--port", "0"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        body = json.dumps(
            {
                "object": "page",
                "entry": [
                    {
                        "id": "111",
                        "time": 1,
                        "changes": [
                            {
                                "field": "leadgen",
                                "value": {
                                    "leadgen_id": 123456789012345,
                                    "page_id": 111,
                                    "form_id": 222,
                                    "created_time": 1,
                                },
                            }
                        ],
                    }
                ],
            }
        ).encode()
        signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        answer = requests.post(
            ready["url"], data=body, timeout=30,
            headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature},
        )  # fmt: skip
        assert answer.status_code == 200
        status = requests.get(ready["status_url"] + ".json", timeout=30).json()
        assert status["unread_leads"] == 1
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr[-2000:]
    assert secret not in stderr
    assert spool.exists()
