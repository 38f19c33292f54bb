"""The ``filtering`` parameter of a ``/leads`` read (calls go through :mod:`fb_graph.client`)."""

from __future__ import annotations

import json


def filtering_param(since: int, until: int) -> str:
    """The ``filtering`` value for leads created in ``[since, until)``, in Unix seconds."""
    return json.dumps(
        [
            {"field": "time_created", "operator": "GREATER_THAN_OR_EQUAL", "value": since},
            {"field": "time_created", "operator": "LESS_THAN", "value": until},
        ],
        separators=(",", ":"),
    )
