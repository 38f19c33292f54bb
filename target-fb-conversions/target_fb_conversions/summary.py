"""The end-of-run summary: events sent, accepted, rejected by reason, too old, per stage."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class RunSummary:
    """Counts for the whole run; every sink adds to the same one."""

    records: int = 0
    sent: int = 0
    accepted: int = 0
    calls: int = 0
    retries: int = 0
    duplicates: int = 0
    already_acknowledged: int = 0
    opted_out: int = 0
    """Records of people who withdrew consent (opt_out_field): never sent."""
    dry_run: bool = False
    rejected: Counter[str] = field(default_factory=Counter)
    accepted_by_stage: Counter[str] = field(default_factory=Counter)
    dropped_fields: Counter[str] = field(default_factory=Counter)
    unmapped_stages: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def too_old(self) -> int:
        return self.rejected["too_old"]

    def lines(self) -> list[str]:
        """Log lines (no personal data: counts, reasons, stage names and field names only)."""
        mode = "dry run, nothing sent: " if self.dry_run else ""
        rejected_total = sum(self.rejected.values())
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(self.rejected.items())) or "none"
        stages = ", ".join(f"{k}={v}" for k, v in sorted(self.accepted_by_stage.items()))
        out = [
            f"Summary: {mode}{self.records} records, {self.sent} events sent in {self.calls} "
            f"calls ({self.retries} retries), {self.accepted} accepted, {rejected_total} "
            f"rejected, {self.too_old} too old, {self.duplicates} duplicates in this run "
            f"skipped, {self.already_acknowledged} already acknowledged (ledger) skipped, "
            f"{self.opted_out} opted out (consent withdrawn) not sent.",
            f"Summary: rejected by reason: {reasons}.",
            f"Summary: accepted per stage: {stages or 'none'}.",
        ]
        if self.dropped_fields:
            dropped = ", ".join(f"{k}={v}" for k, v in sorted(self.dropped_fields.items()))
            out.append(f"Summary: fields dropped because they could not be normalised: {dropped}.")
        if self.unmapped_stages:
            unmapped = ", ".join(f"{k}={v}" for k, v in sorted(self.unmapped_stages.items()))
            out.append(f"Summary: stages not in stage_mapping, sent as NOT_ASSIGNED: {unmapped}.")
        return out
