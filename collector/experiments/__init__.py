"""A/B tests: assignment (pure), analysis (pure statistics), results (counts from the store), ending a test.

The pure parts are named here; results and ending are imported from their modules.
"""

from __future__ import annotations

from collector.experiments.analysis import (
    analyze,
    diff_interval,
    lift_interval,
    msprt_evidence,
    prob_b_beats_a,
    prob_best,
    sequential_decision,
    two_proportion_z,
    wilson_interval,
)
from collector.experiments.assignment import assign, assign_email, fmix32, fnv1a32, variant_hash, variant_score

__all__ = [
    "analyze",
    "assign",
    "assign_email",
    "diff_interval",
    "fmix32",
    "fnv1a32",
    "lift_interval",
    "msprt_evidence",
    "prob_b_beats_a",
    "prob_best",
    "sequential_decision",
    "two_proportion_z",
    "variant_hash",
    "variant_score",
    "wilson_interval",
]
