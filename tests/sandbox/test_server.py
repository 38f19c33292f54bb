"""The HTTP server itself: keep-alive, concurrent clients, clients that vanish, shutdown."""

from __future__ import annotations

import socket
import threading

import pytest
import requests
from sandbox_client import Graph

from fb_graph_sandbox import Sandbox, SandboxConfig


def test_keep_alive_reuses_one_connection(graph, sandbox):
    form = sandbox.data.form_ids()[0]
    first = graph.get(f"{form}/leads")
    assert first.raw.version == 11
    for _ in range(5):
        assert graph.get(f"{form}/leads").status_code == 200
    assert sandbox.open_connections() == 1
    other = Graph(sandbox)
    other.get(f"{form}/leads")
    assert sandbox.open_connections() == 2


def test_concurrent_clients_each_get_every_lead_once(make_sandbox):
    sb = make_sandbox(forms_per_page=2, leads_per_form=2000)
    results: dict[int, list[str]] = {}
    errors: list[BaseException] = []

    def read(n: int) -> None:
        try:
            form = sb.data.form_ids()[n % 2]
            results[n] = [lead["id"] for lead in Graph(sb).all_leads(form, 100, fields="id")]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    for n, ids in results.items():
        assert len(ids) == len(set(ids)) == 2000, n
    assert len(sb.requests()) == 6 * 20


def test_a_client_killed_mid_answer_does_not_hurt_the_server(make_sandbox):
    sb = make_sandbox(forms_per_page=1, leads_per_form=5000)
    form = sb.data.form_ids()[0]
    for _ in range(5):
        conn = socket.create_connection((sb.host, sb.port))
        conn.sendall(
            f"GET /v26.0/{form}/leads?limit=1000&fields=id,field_data HTTP/1.1\r\n"
            f"Host: {sb.host}\r\nAuthorization: Bearer {sb.token}\r\n\r\n".encode()
        )
        conn.recv(100)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conn.close()  # reset while the server is still writing
    assert len(Graph(sb).all_leads(form, 1000, fields="id")) == 5000


def test_malformed_json_body_is_a_graph_error(graph, sandbox):
    answer = graph.session.post(
        f"{sandbox.url}/v26.0/{sandbox.dataset_id}/events",
        data=b"{not json",
        headers={**graph.headers(), "Content-Type": "application/json"},
        timeout=10,
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == 100
    assert sandbox.events() == []


def test_closed_sandbox_refuses_connections_and_resets_open_ones():
    sb = Sandbox(SandboxConfig(leads_per_form=5))
    graph = Graph(sb)
    form = sb.data.form_ids()[0]
    assert graph.get(f"{form}/leads").status_code == 200  # a kept-alive connection
    sb.close()
    with pytest.raises(requests.ConnectionError):
        graph.get(f"{form}/leads")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{sb.url}/v26.0/{form}/leads", timeout=5)
    sb.close()  # twice is harmless


def test_keyword_settings_or_a_config_not_both():
    with Sandbox(leads_per_form=3, forms_per_page=1) as sb:
        assert sb.data.lead_count(sb.data.form_ids()[0]) == 3
    with pytest.raises(TypeError):
        Sandbox(SandboxConfig(), leads_per_form=3)


def test_a_client_that_times_out_leaves_no_traceback_and_the_call_still_happens(sandbox, capfd):
    import time as _time

    event = {
        "event_name": "Lead",
        "event_time": int(_time.time()),
        "action_source": "system_generated",
        "user_data": {"lead_id": "1234567890123456"},
        "custom_data": {"event_source": "crm", "lead_event_source": "X"},
    }
    sandbox.fault("/events", kind="slow", seconds=0.6)
    with pytest.raises(requests.Timeout):
        requests.post(
            f"{sandbox.url}/v26.0/{sandbox.dataset_id}/events",
            json={"data": [event]},
            headers={"Authorization": f"Bearer {sandbox.token}"},
            timeout=0.2,
        )
    _time.sleep(0.8)
    # Like Meta, the server finished the call the client stopped waiting for.
    assert sandbox.events() == [event]
    assert "Traceback" not in capfd.readouterr().err
