"""The settings editor's form: one field per key of the settings document, made from the model.

Each leaf key of SiteSettings becomes a field named by its dotted path (`popup.delay_ms`):
a checkbox for booleans, a number box for numbers, a text box (or a text area for long text)
for strings, one-per-line text areas for lists of strings, and JSON text areas for lists of
objects (recovery.steps, webhooks, experiments). The submitted form is turned back into a
document and validated by the model; each validation error is shown next to the field whose
path starts its location, so `recovery.steps.1.delay_minutes` lands beside `recovery.steps`.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from collector.schemas import SiteSettings, validation_errors_by_key

LONG_TEXT = {"popup.body", "popup.consent_text"}
SECTIONS = {
    "locale": "Language",
    "popup": "Popup",
    "recovery": "Recovery emails",
    "webhooks": "Webhooks",
    "experiments": "Experiments",
}
HELP = {
    "popup.delay_ms": "milliseconds after the page loads before the popup may open",
    "popup.sensitivity_px": "how close to the top edge the pointer must leave the window",
    "popup.cap_days": "days before the popup shows again to a shopper who closed it (0: every visit)",
    "popup.reasons": "one reason per line; shoppers may pick one when they close the popup",
    "popup.pages.include": "URL path patterns where the popup may show, one per line (empty: everywhere)",
    "popup.pages.exclude": "URL path patterns where it never shows, one per line",
    "recovery.abandon_after_minutes": "minutes without a change before a cart with an email counts as abandoned (0: at the next sweep)",
    "recovery.steps": 'JSON list of reminders: [{"delay_minutes": 0, "subject": "...", "discount_code": null}]; delays count from the abandonment',
    "recovery.from": 'the sender, like "Shop <shop@example.com>"',
    "recovery.cart_url": "where a recovery link lands (the cart page of the shop)",
    "recovery.attribution_days": "an order within this many days of a click counts as recovered",
    "webhooks": 'JSON list: [{"url": "https://...", "events": ["lead", "abandoned", "recovered"]}]',
    "experiments": "JSON list of experiments (see the Experiments page)",
}


@dataclass
class Field:
    key: str  # dotted path with the document's key names (aliases), e.g. "recovery.from"
    path: tuple[str, ...]
    kind: str  # bool | number | text | longtext | text_or_null | lines | choice | json
    section: str
    nullable: bool = False
    choices: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.path[-1].replace("_", " ")

    @property
    def help(self) -> str | None:
        return HELP.get(self.key)

    @property
    def dom_id(self) -> str:
        return "f-" + self.key.replace(".", "-")


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The type without Annotated and Optional, and whether None is allowed."""
    nullable = False
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        nullable = len(args) < len(typing.get_args(annotation))
        annotation = args[0] if len(args) == 1 else annotation
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation, nullable


def _kind(key: str, annotation: Any) -> str:
    tp, nullable = _unwrap(annotation)
    if typing.get_origin(tp) is typing.Literal:
        return "choice"
    if tp is bool:
        return "bool"
    if tp in (int, float):
        return "number"
    if tp is str:
        return "text_or_null" if nullable else ("longtext" if key in LONG_TEXT else "text")
    if typing.get_origin(tp) is list:
        (item,) = typing.get_args(tp) or (Any,)
        item, _ = _unwrap(item)
        return "lines" if item is str else "json"
    return "json"


def fields(model: type[BaseModel] = SiteSettings, prefix: tuple[str, ...] = ()) -> list[Field]:
    out: list[Field] = []
    for name, info in model.model_fields.items():
        path = prefix + (info.alias or name,)
        key = ".".join(path)
        tp, _ = _unwrap(info.annotation)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            out += fields(tp, path)
        else:
            kind = _kind(key, info.annotation)
            _, nullable = _unwrap(info.annotation)
            choices = tuple(str(c) for c in typing.get_args(tp)) if kind == "choice" else ()
            out.append(Field(key, path, kind, path[0], nullable, choices))
    return out


def _get(doc: dict[str, Any], path: tuple[str, ...]) -> Any:
    cur: Any = doc
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            return None
        cur = cur[p]
    return cur


def _set(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    cur = doc
    for p in path[:-1]:
        cur = cur.setdefault(p, {})
    cur[path[-1]] = value


def display_values(doc: dict[str, Any]) -> dict[str, Any]:
    """What each field shows for a settings document."""
    out: dict[str, Any] = {}
    for f in fields():
        value = _get(doc, f.path)
        if f.kind == "bool":
            out[f.key] = bool(value)
        elif f.kind == "lines":
            out[f.key] = "\n".join(str(v) for v in value or [])
        elif f.kind == "json":
            out[f.key] = json.dumps(value if value is not None else [], indent=2, ensure_ascii=False)
        elif value is None:
            out[f.key] = ""
        else:
            out[f.key] = str(value) if not isinstance(value, float) or not value.is_integer() else str(int(value))
    return out


def from_form(form: Any, current: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """(the document to validate, the values to show again, errors found before validation)."""
    doc = json.loads(json.dumps(current))
    shown: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for f in fields():
        if f.kind == "bool":
            value: Any = f.key in form
            shown[f.key] = value
            _set(doc, f.path, value)
            continue
        raw = form.get(f.key)
        if raw is None or not isinstance(raw, str):
            continue  # not on this form: the stored value stays
        raw = raw.replace("\r\n", "\n")
        shown[f.key] = raw
        if f.kind == "number":
            value = raw.strip()
        elif f.kind == "text_or_null":
            value = raw if raw.strip() else None
        elif f.kind == "lines":
            value = [line.strip() for line in raw.split("\n") if line.strip()]
            if not value and f.nullable:
                value = None  # left empty: the locale's default list (popup.reasons)
        elif f.kind == "json":
            try:
                value = json.loads(raw) if raw.strip() else []
            except ValueError as exc:
                errors[f.key] = f"not valid JSON: {exc}"
                continue
        else:
            value = raw
        _set(doc, f.path, value)
    return doc, shown, errors


def errors_by_field(exc: ValidationError) -> dict[str, str]:
    """Each validation error under the field it belongs to (the longest matching key)."""
    keys = [f.key for f in fields()]
    out: dict[str, str] = {}
    for loc, msg in validation_errors_by_key(exc).items():
        owner = None
        for k in keys:
            if (loc == k or loc.startswith(k + ".")) and (owner is None or len(k) > len(owner)):
                owner = k
        target = owner or "(document)"
        text = msg if owner == loc else f"{loc}: {msg}"
        out[target] = out[target] + "; " + text if target in out else text
    return out


def validate(doc: dict[str, Any]) -> tuple[SiteSettings | None, ValidationError | None]:
    try:
        return SiteSettings.model_validate(doc), None
    except ValidationError as exc:
        return None, exc
