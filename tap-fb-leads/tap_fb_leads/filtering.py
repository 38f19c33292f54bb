"""The parameters of a leads read: the fields asked for (the poll's ``/leads`` and the
webhook leads' ``?ids=`` alike: one record shape) and the ``filtering`` of a time slice (calls go
through :mod:`fb_graph.client`)."""

from __future__ import annotations

import json

from fb_graph.fields import LEAD_FIELDS

LEAD_FIELDS_PARAM = ",".join(LEAD_FIELDS)


def filtering_param(since: int, until: int) -> str:
    """The ``filtering`` value for leads created in ``[since, until)``, in Unix seconds."""
    return json.dumps(
        [
            {"field": "time_created", "operator": "GREATER_THAN_OR_EQUAL", "value": since},
            {"field": "time_created", "operator": "LESS_THAN", "value": until},
        ],
        separators=(",", ":"),
    )
