"""The properties of ``leads.answers``: one per question key of the forms, typed as
:func:`tap_fb_leads.records.flatten_answers` writes the answers.

``flatten_answers`` writes a question's answer as a string when the lead gave one value, a
list of strings when it gave several, and null when it gave none. Meta's question objects do
not say whether a multiple-choice question allows several answers, so a question with
``options`` is declared string-or-array, and any other question string.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

ONE_VALUE: dict[str, Any] = {"type": ["string", "null"]}
SEVERAL_VALUES: dict[str, Any] = {"type": ["array", "string", "null"], "items": {"type": "string"}}
"""A question with choices: a string when one was picked, an array when several were."""


def answer_type(question: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON schema of one question's answer."""
    return SEVERAL_VALUES if question.get("options") else ONE_VALUE


class AnswerColumns:
    """The question keys of many forms, merged: each key once, in the order first seen, with
    the wider type when forms disagree (string-or-array over string)."""

    def __init__(self) -> None:
        self._types: dict[str, dict[str, Any]] = {}
        self._labels: dict[str, str] = {}

    def add_form(self, questions: object) -> None:
        """Declare the questions of one form (its ``questions`` as Meta sends them); entries
        that are not objects with a text ``key`` are skipped."""
        if not isinstance(questions, list):
            return
        for question in questions:
            if not isinstance(question, dict):
                continue
            key = question.get("key")
            if not isinstance(key, str) or not key:
                continue
            kind = answer_type(question)
            if self._types.get(key) is not SEVERAL_VALUES:
                self._types[key] = kind
            label = question.get("label")
            if isinstance(label, str) and label and key not in self._labels:
                self._labels[key] = label

    def __len__(self) -> int:
        return len(self._types)

    def properties(self, names: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
        """Each key's schema (a copy), named by ``names`` when given (the ASCII names); the
        description holds the question's label, and its key when it is renamed."""
        properties: dict[str, dict[str, Any]] = {}
        for key, kind in self._types.items():
            name = names[key] if names is not None else key
            schema = copy.deepcopy(kind)
            label = self._labels.get(key, key)
            schema["description"] = f"{key}: {label}" if name != key else label
            properties[name] = schema
        return properties

    def keys(self) -> Iterable[str]:
        return self._types.keys()


def answers_property(properties: Mapping[str, dict[str, Any]], description: str) -> dict[str, Any]:
    """The ``answers`` object: the declared questions, and any other key still allowed (a
    question added after discovery, a form discovery could not read)."""
    return {
        "type": ["object", "null"],
        "properties": dict(properties),
        "additionalProperties": True,
        "description": description,
    }


def declared_answers(schema: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``answers`` property of a leads schema (a catalog's), when it is an object."""
    answers = schema.get("properties", {}).get("answers")
    return answers if isinstance(answers, dict) else None
