"""Ending a test: the kept variant becomes the site's setting, in one step."""

from __future__ import annotations

from typing import Any

from collector.schemas import Experiment, SiteSettings


def end_experiment(settings: SiteSettings, name: str, keep: str) -> SiteSettings:
    """Ends the test and makes the kept variant the site's setting, in one step."""
    doc = settings.dump()
    exp = next((e for e in settings.experiments if e.name == name), None)
    if exp is None:
        raise ValueError(f"no experiment named {name!r}")
    variant = next((v for v in exp.variants if v.name == keep), None)
    if variant is None:
        raise ValueError(f"experiment {name!r} has no variant {keep!r}")
    _apply(doc, exp, variant)
    for e in doc["experiments"]:
        if e["name"] == name:
            e["enabled"] = False
    return SiteSettings.model_validate(doc)


def _apply(doc: dict[str, Any], exp: Experiment, variant: Any) -> None:
    if exp.kind == "popup" and variant.popup is not None:
        changes = variant.popup.model_dump(mode="json", exclude_none=True)
        # Only the colours the variant names: the site's others stay as they were.
        colors = changes.pop("colors", None)
        doc["popup"].update(changes)
        if colors:
            doc["popup"]["colors"] = {**doc["popup"].get("colors", {}), **colors}
    if exp.kind in ("popup", "discount") and variant.discount_code is not None:
        doc["popup"]["discount_code"] = variant.discount_code
    if exp.kind == "discount" and variant.discount_code is not None:
        # The reminders that offer a code (or fall back to one when the code pool is empty) offered
        # the test's variant (recovery/codes.py): they keep it.
        for step in doc["recovery"]["steps"]:
            if step.get("discount_code") is not None:
                step["discount_code"] = variant.discount_code
    if exp.kind == "subject" and variant.subject is not None and exp.step < len(doc["recovery"]["steps"]):
        doc["recovery"]["steps"][exp.step]["subject"] = variant.subject
