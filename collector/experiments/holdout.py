"""The recovery holdout: which shoppers get no reminders, chosen stably by address; pure standard library.

A shopper is held out when the experiments' weighted rendezvous hashing (collector/experiments/assignment.py)
puts their normalised address in the "holdout" variant of the fixed experiment HOLDOUT_EXPERIMENT, with
weights (100 - percent, percent). The same address is therefore in the same group on every cart and
every device, and raising the percentage only moves treated shoppers into the holdout (never back and
forth), because each (address, group) pair keeps its fixed score.
"""

from __future__ import annotations

from collector.experiments.assignment import assign_email

HOLDOUT_EXPERIMENT = "cartback-holdout"
HELD_OUT = 1
TREATED = 0


def holdout_group(email: str, percent: float) -> int | None:
    """HELD_OUT or TREATED for the address; None when no holdout runs (percent 0)."""
    if percent <= 0:
        return None
    group = assign_email(HOLDOUT_EXPERIMENT, email, [("treated", 100.0 - percent), ("holdout", float(percent))])
    return HELD_OUT if group == "holdout" else TREATED
