"""The sender over real HTTP: halving on "reduce data", fatal kinds, a short acknowledgement."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from target_helpers import event_posts, run_target, singer_lines, stage_record, write_config

from fb_graph.client import GraphClient
from fb_graph.errors import ADVICE, ErrorKind
from target_fb_conversions.events import EventBuilder, EventSettings
from target_fb_conversions.sender import Sender, SendError, SenderSettings


def test_reduce_data_halves_the_batch(make_sandbox, tmp_path):
    sb = make_sandbox(leads_per_form=1)
    sb.fault(path_contains="/events", kind="reduce", times=1)
    result = run_target(
        write_config(tmp_path, sb), singer_lines([stage_record(i) for i in range(1000)])
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert [len(b["data"]) for b in sb.event_batches()] == [500, 500]
    assert len(event_posts(sb)) == 3


@pytest.mark.parametrize(
    ("kind", "advice"),
    [("policy", ErrorKind.POLICY), ("not_found", ErrorKind.NOT_FOUND)],
)
def test_fatal_kinds_stop_at_once(make_sandbox, tmp_path, kind, advice):
    sb = make_sandbox(leads_per_form=1)
    sb.fault(path_contains="/events", kind=kind, times=1)
    result = run_target(write_config(tmp_path, sb), singer_lines([stage_record(1)]))
    assert result.returncode == 1
    assert ADVICE[advice] in result.stderr
    assert "Traceback" not in result.stderr
    assert len(event_posts(sb)) == 1


def test_unknown_dataset_is_a_not_found_error(sandbox, tmp_path):
    config = write_config(tmp_path, sandbox, dataset_id="111111111111111")
    result = run_target(config, singer_lines([stage_record(1)]))
    assert result.returncode == 1
    assert ADVICE[ErrorKind.NOT_FOUND] in result.stderr


class _ShortAck(BaseHTTPRequestHandler):
    """A server that acknowledges one event fewer than it was sent."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        payload = json.dumps({"events_received": len(body["data"]) - 1}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


def test_short_acknowledgement_stops_instead_of_guessing():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ShortAck)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        builder = EventBuilder(EventSettings(lead_event_source="HubSpot"))
        events = [builder.build(stage_record(i)) for i in range(3)]
        sender = Sender(
            SenderSettings(destination_id="900000000000001"),
            client=GraphClient(
                access_token="EAAtoken",
                api_version="v26.0",
                api_url=f"http://127.0.0.1:{server.server_port}",
            ),
            logger=logging.getLogger("test"),
        )
        with pytest.raises(SendError, match="acknowledged 2 of the 3 events"):
            sender.send(events)
    finally:
        server.shutdown()
