"""The ``filtering`` parameter of a ``/leads`` read (calls go through :mod:`fb_graph.client`)."""

from __future__ import annotations

import json

# Until every caller imports them from fb_graph: the one client's errors and pacing.
from fb_graph.client import GraphUnreachable, ThrottleWaitTooLong  # noqa: F401
from fb_graph.usage import pacing_seconds  # noqa: F401


def filtering_param(since: int, until: int) -> str:
    """The ``filtering`` value for leads created in ``[since, until)``, in Unix seconds."""
    return json.dumps(
        [
            {"field": "time_created", "operator": "GREATER_THAN_OR_EQUAL", "value": since},
            {"field": "time_created", "operator": "LESS_THAN", "value": until},
        ],
        separators=(",", ":"),
    )
