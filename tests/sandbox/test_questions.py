"""Forms' questions as Meta serves them, and a question added to a form at run time (the
advertiser edits the form): served from then on, answered by the leads that come after."""

from __future__ import annotations

import requests


def _questions(graph, form_id: str) -> list[dict]:
    answer = graph.get(form_id, fields="questions")
    assert answer.status_code == 200, answer.text
    return answer.json()["questions"]


def test_questions_have_meta_s_fields(graph, sandbox):
    (page,) = sandbox.data.page_ids
    forms = graph.get(f"{page}/leadgen_forms", fields="id,questions").json()["data"]
    for form in forms:
        for question in form["questions"]:
            assert {"key", "label", "type", "id"} <= set(question)
            assert set(question) <= {"key", "label", "type", "id", "options"}
            assert question["id"].isdigit()
            for option in question.get("options", []):
                assert set(option) == {"key", "value"}


def test_an_added_question_is_served_and_answered_by_later_leads(graph, sandbox):
    form_id, other = sandbox.data.form_ids()[:2]
    before = _questions(graph, form_id)
    old_lead = next(iter(sandbox.data.leads(form_id)))
    added = sandbox.add_question(form_id, "¿dónde_nos_conociste?", "¿Dónde nos conociste?",
                                 options=["radio", "amigos", "web"])  # fmt: skip
    after = _questions(graph, form_id)
    assert after[:-1] == before and after[-1] == added
    assert added["key"] == "¿dónde_nos_conociste?" and added["type"] == "CUSTOM"
    assert [o["key"] for o in added["options"]] == ["radio", "amigos", "web"]
    assert _questions(graph, other)[-1]["key"] != added["key"]  # only that form asks it

    new_leads = sandbox.add_leads(form_id, 3)
    for lead in new_leads:
        (answer,) = [a for a in lead["field_data"] if a["name"] == added["key"]]
        assert answer["values"] and set(answer["values"]) <= {"radio", "amigos", "web"}
    assert any(len(a["values"]) == 2 for lead in new_leads for a in lead["field_data"]
               if a["name"] == added["key"])  # fmt: skip
    served = {lead["id"]: lead for lead in graph.all_leads(form_id, 100, fields="field_data")}
    assert {lead["id"] for lead in new_leads} <= set(served)
    assert all(a["name"] != added["key"] for a in served[old_lead["id"]]["field_data"])

    sandbox.reset()  # forgets added questions with added leads
    assert _questions(graph, form_id) == before


def test_questions_are_added_over_http_and_a_repeated_key_is_refused(sandbox):
    form_id = sandbox.data.form_ids()[0]
    url = f"{sandbox.url}/__sandbox__/questions"
    body = {"form_id": form_id, "key": "budget_note", "label": "Anything else?"}
    added = requests.post(url, json=body, timeout=10)
    assert added.status_code == 200, added.text
    assert added.json()["type"] == "CUSTOM" and "options" not in added.json()
    again = requests.post(url, json=body, timeout=10)
    assert again.status_code == 400
    assert "already asks 'budget_note'" in again.json()["error"]
    (lead,) = sandbox.add_leads(form_id, 1)
    assert {"name": "budget_note", "values": [f"answer {lead_index(sandbox, form_id)}"]} in lead[
        "field_data"
    ]


def lead_index(sandbox, form_id: str) -> int:
    """The index of the form's newest added lead (what its text answer is made from)."""
    form = sandbox.data.form_by_id[form_id]
    return form.count + form.added_made - 1
