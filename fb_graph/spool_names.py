"""The webhook spool's names and error, without SQLAlchemy: what a program that may never open
a spool (the tap, unless ``webhook_spool`` is set) needs at start-up. :mod:`fb_graph.spool`
uses and re-exports them."""

from __future__ import annotations

CHANGES = "fb_leads_spool_changes"
LEADGEN = "leadgen"
TAP_READER = "tap-fb-leads"
MESSENGER_READER = "tap-fb-leads:messenger_leads"
"""The position of the tap's ``messenger_leads`` stream: the Messenger kinds are pruned up to
it, every other kind up to :data:`TAP_READER`'s."""


class SpoolError(Exception):
    """The spool cannot be opened, read or written; one sentence saying what to check."""
