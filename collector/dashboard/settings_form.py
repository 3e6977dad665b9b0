"""The settings editor's form: one field per key of the settings document, made from the model, in words.

Each leaf key of SiteSettings becomes a field named by its dotted path (`popup.delay_ms`) with a plain
label, help text and the control that fits it: a toggle for booleans, a number box with its unit for
numbers, a colour picker for colours, a list for languages, a text box (or area) for strings, one-per-line
lists for lists of strings. The reminder steps are a list of steps (`recovery.steps.N.subject`, …) with the
delay in the unit the marketer picks; the webhooks a list of addresses with a box per event
(`webhooks.N.url`, `webhooks.N.events.lead`); a new test is started from a few plain fields (`new_test.*`),
and the running tests are listed in words (they are ended on the Experiments page). Nothing asks for JSON
(the whole-document JSON editor stays as an advanced option on the page). The submitted form becomes a
document that the model validates; each error is shown beside the field its location names.

Each section of the page posts `present.{section}`: a checkbox left unticked sends nothing, so a toggle is
read only when its section was on the form (a form without it keeps the stored value).
"""

from __future__ import annotations

import json
import re
import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from collector.contrast import passes_aa, ratio
from collector.locales import catalogue, effective, step_subject
from collector.schemas import WEBHOOK_EVENTS, SiteSettings, validation_errors_by_key

LONG_TEXT = {"popup.body", "popup.consent_text", "recovery.email.intro", "recovery.email.footer"}
SECTIONS = {
    "locale": "Language",
    "popup": "Popup",
    "recovery": "Reminders and emails",
    "experiments": "Tests",
    "webhooks": "Webhooks",
    "platform": "Platform",
    "retention_days": "Data kept",
}
# Where a popup field goes inside the Popup section: when it shows, what it says, how it looks.
POPUP_GROUPS = {
    "when": (
        "When it shows",
        ("enabled", "delay_ms", "sensitivity_px", "cap_days", "only_with_cart", "mobile", "pages"),
    ),
    "says": (
        "What it says",
        ("headline", "body", "button", "discount_code", "require_consent", "consent_text", "reasons", "shipping_note"),
    ),
    "looks": ("How it looks", ("colors",)),
}
LABELS = {
    "locale": "Language shoppers see",
    "popup.enabled": "Show the popup by itself",
    "popup.headline": "Headline",
    "popup.body": "Text under the headline",
    "popup.button": "Button",
    "popup.discount_code": "Discount code shown after the email is given",
    "popup.require_consent": "Ask for consent with a checkbox",
    "popup.consent_text": "Consent checkbox text",
    "popup.delay_ms": "Wait before it may show",
    "popup.sensitivity_px": "Exit-intent distance from the top edge",
    "popup.cap_days": "Show again to someone who closed it after",
    "popup.only_with_cart": "Only to shoppers with something in the cart",
    "popup.mobile": "Also on phones and tablets",
    "popup.pages.include": "Only on these pages",
    "popup.pages.exclude": "Never on these pages",
    "popup.reasons": "Reasons shoppers can pick when leaving",
    "popup.colors.background": "Background colour",
    "popup.colors.text": "Text colour",
    "popup.colors.button": "Button colour",
    "popup.colors.button_text": "Button text colour",
    "popup.shipping_note": "Small note at the bottom",
    "recovery.enabled": "Send reminder emails",
    "recovery.abandon_after_minutes": "A cart counts as abandoned after",
    "recovery.steps": "Reminder steps",
    "recovery.from": "Sender",
    "recovery.cart_url": "Cart page the email's button opens",
    "recovery.attribution_days": "Count an order as recovered within",
    "recovery.email.logo_url": "Logo (https address of the image)",
    "recovery.email.brand_color": "Button colour in the email",
    "recovery.email.heading": "Email heading",
    "recovery.email.intro": "Email text under the heading",
    "recovery.email.button": "Email button",
    "recovery.email.footer": "Footer (your postal address)",
    "webhooks": "Webhooks",
    "experiments": "Running and ended tests",
    "platform.kind": "Storefront platform",
    "platform.email_fields": "Capture addresses typed into the store's own email fields",
    "platform.shopify_webhook_secret": "Shopify order webhook secret",
    "platform.woocommerce_webhook_secret": "WooCommerce order webhook secret",
    "retention_days": "Keep events and closed carts for",
}
# What each platform choice means, in words (the select's options).
PLATFORM_KINDS = {
    "auto": "Find out by itself (Shopify or WooCommerce)",
    "shopify": "Shopify",
    "woocommerce": "WooCommerce",
    "none": "None: the tag only shows the popup; the theme reports the cart",
}
WEBHOOK_EVENT_LABELS = {
    "lead": "A shopper gives an email address (lead)",
    "abandoned": "A cart is abandoned (abandoned)",
    "recovered": "An order is credited to a reminder (recovered)",
}
UNITS = {
    "popup.delay_ms": "milliseconds",
    "popup.sensitivity_px": "pixels",
    "popup.cap_days": "days",
    "recovery.abandon_after_minutes": "minutes without a change",
    "recovery.attribution_days": "days of a click or an open",
    "retention_days": "days",
}
HELP = {
    "locale": "Auto: the language of each storefront page (its lang attribute, or Shopify's locale), else English",
    "popup.delay_ms": "after the page loads; 1000 is one second",
    "popup.cap_days": "0: on every visit",
    "popup.reasons": "one reason per line; empty: the language's default reasons",
    "popup.pages.include": "URL paths like /products/*, one per line; empty: every page",
    "popup.pages.exclude": "URL paths like /checkout*, one per line",
    "recovery.abandon_after_minutes": "0: at the next check",
    "recovery.from": 'like "Shop <shop@example.com>"',
    "recovery.email.footer": "shown above the unsubscribe line",
    "platform.kind": "the tag reads the cart, restores it and reports the order by itself on these platforms",
    "platform.email_fields": "checkout, account and newsletter fields; never password fields or fields marked data-cartback-ignore",
    "platform.shopify_webhook_secret": "the key Shopify shows under Settings, Notifications, Webhooks; empty: refuse every delivery",
    "platform.woocommerce_webhook_secret": "the secret you typed in WooCommerce, Settings, Advanced, Webhooks; empty: refuse every delivery",
    "retention_days": "leads, orders and unsubscribes are kept; at least 1",
}
STEP_FIELDS = ("delay", "delay_unit", "subject", "preheader", "discount_code", "use_code_pool")
DELAY_UNITS = {"minutes": 1, "hours": 60, "days": 1440}
_STEP_KEY = re.compile(r"^recovery\.steps\.(\d{1,2})\.(\w+)$")
_HOOK_KEY = re.compile(r"^webhooks\.(\d{1,2})\.url$")
TEST_KINDS = {
    "popup.headline": "Popup headline",
    "popup.button": "Popup button",
    "popup.body": "Popup text",
    "discount": "Discount code (popup and reminders)",
    "subject": "Subject of a reminder step",
}


def language_names() -> dict[str, str]:
    from collector.locales import LOCALES

    return {"auto": "Auto (each page's own language)", **{loc: str(catalogue(loc)["name"]) for loc in LOCALES}}


@dataclass
class Field:
    key: str  # dotted path with the document's key names (aliases), e.g. "recovery.from"
    path: tuple[str, ...]
    kind: str  # bool | number | text | longtext | text_or_null | lines | choice | color | steps | webhooks | json
    section: str
    nullable: bool = False
    choices: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return LABELS.get(self.key, self.path[-1].replace("_", " ").capitalize())

    @property
    def help(self) -> str | None:
        return HELP.get(self.key)

    @property
    def unit(self) -> str | None:
        return UNITS.get(self.key)

    @property
    def dom_id(self) -> str:
        return "f-" + self.key.replace(".", "-")

    @property
    def group(self) -> str:
        if self.section == "popup":
            for name, (_, members) in POPUP_GROUPS.items():
                if self.path[1] in members:
                    return name
        if self.key.startswith("recovery.email."):
            return "email"
        return ""


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
    if key == "recovery.steps":
        return "steps"
    if key == "webhooks":
        return "webhooks"
    if typing.get_origin(tp) is typing.Literal:
        return "choice"
    if tp is bool:
        return "bool"
    if tp in (int, float):
        return "number"
    if tp is str:
        if key.startswith("popup.colors.") or key.endswith("brand_color"):
            return "color"
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
        tp, nullable = _unwrap(info.annotation)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            out += fields(tp, path)
        else:
            kind = _kind(key, info.annotation)
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


def _number(value: Any) -> str:
    if value is None:
        return ""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _hex6(value: str) -> str:
    # <input type=color> takes only #rrggbb.
    v = value.lower()
    return "#" + "".join(c * 2 for c in v[1:]) if re.match(r"^#[0-9a-f]{3}$", v) else v


def test_summaries(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The site's tests in words for the form: name, what varies, running or ended, the variants' shares."""
    out = []
    for e in doc.get("experiments") or []:
        if not isinstance(e, dict):
            continue
        variants = [v for v in e.get("variants") or [] if isinstance(v, dict)]
        total = sum(float(v.get("weight", 1)) for v in variants) or 1.0
        what = {"popup": "the popup", "discount": "the discount code", "subject": "a reminder's subject"}.get(
            str(e.get("kind")), str(e.get("kind"))
        )
        if e.get("kind") == "subject":
            what += f" (step {int(e.get('step', 0)) + 1})"
        shares = ", ".join(f"{v.get('name')} {round(100 * float(v.get('weight', 1)) / total)} %" for v in variants)
        out.append({"name": e.get("name"), "what": what, "running": e.get("enabled", True), "shares": shares})
    return out


def step_values(step: dict[str, Any]) -> dict[str, Any]:
    """A step as its fields show it: the delay in the largest unit that divides it."""
    minutes = float(step.get("delay_minutes") or 0)
    unit = next((u for u in ("days", "hours") if minutes and minutes % DELAY_UNITS[u] == 0), "minutes")
    return {
        "delay": _number(minutes / DELAY_UNITS[unit]),
        "delay_unit": unit,
        "subject": step.get("subject") or "",
        "preheader": step.get("preheader") or "",
        "discount_code": step.get("discount_code") or "",
        "use_code_pool": bool(step.get("use_code_pool")),
    }


def step_summary(step: dict[str, Any], index: int, locale: str) -> str:
    """'1 hour after the cart is abandoned: "You left something in your cart"'."""
    minutes = float(step.get("delay_minutes") or 0)
    if minutes == 0:
        when = "As soon as the cart is abandoned"
    else:
        unit = next((u for u in ("days", "hours") if minutes % DELAY_UNITS[u] == 0), "minutes")
        n = minutes / DELAY_UNITS[unit]
        word = unit if n != 1 else unit[:-1]
        when = f"{_number(n)} {word} after the cart is abandoned"
    subject = step.get("subject") or step_subject(locale, index)
    code = step.get("discount_code")
    offer = " (pool codes)" if step.get("use_code_pool") else (f" with code {code}" if code else "")
    return f"{when}: \u201c{subject}\u201d{offer}"


def display_values(doc: dict[str, Any]) -> dict[str, Any]:
    """What each field shows for a settings document."""
    out: dict[str, Any] = {}
    for f in fields():
        value = _get(doc, f.path)
        if f.kind == "bool":
            out[f.key] = bool(value)
        elif f.kind == "steps":
            out[f.key] = [step_values(s) for s in (value if isinstance(value, list) else [])]
        elif f.kind == "webhooks":
            out[f.key] = [
                {"url": str(h.get("url") or ""), "events": list(h.get("events", WEBHOOK_EVENTS))}
                for h in (value if isinstance(value, list) else [])
                if isinstance(h, dict)
            ]
        elif f.kind == "lines":
            out[f.key] = "\n".join(str(v) for v in value or [])
        elif f.kind == "json":
            out[f.key] = json.dumps(value if value is not None else [], indent=2, ensure_ascii=False)
        elif f.kind == "color":
            out[f.key] = _hex6(str(value)) if value else ""
        elif value is None:
            out[f.key] = ""
        else:
            out[f.key] = (
                _number(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)
            )
    return out


def placeholders(settings: SiteSettings) -> dict[str, str]:
    """The locale's text each empty text field stands for (the field shows it greyed)."""
    loc = effective(settings.locale, None)
    cat = catalogue(loc)
    out = {f"popup.{k}": str(cat["popup"][k]) for k in ("headline", "body", "button", "consent_text")}
    out["popup.reasons"] = "\n".join(cat["popup"]["reasons"])
    out["recovery.email.heading"] = str(cat["email"]["heading"])
    out["recovery.email.intro"] = str(cat["email"]["intro_first"])
    out["recovery.email.button"] = str(cat["email"]["button"])
    for i in range(10):
        out[f"recovery.steps.{i}.subject"] = step_subject(loc, i)
    return out


def contrast_warnings(settings: SiteSettings) -> list[str]:
    """The site's own popup colours that fall under WCAG AA (4.5:1), in words."""
    c = settings.popup.colors
    out = []
    for fg, bg, what in (
        (c.text, c.background, "text on the background"),
        (c.button_text, c.button, "button text on the button"),
    ):
        if not passes_aa(fg, bg):
            out.append(f"The popup's {what} has a contrast of {ratio(fg, bg):.2f}:1; WCAG AA asks for 4.5:1.")
    return out


def _steps_from_form(form: Any) -> tuple[list[dict[str, Any]], dict[str, str], dict[str, str]]:
    """The steps in the order the form lists them (a moved step keeps its old number in its names)."""
    order: list[str] = []
    raw: dict[str, dict[str, str]] = {}
    for name in form:
        m = _STEP_KEY.match(name)
        if m is None:
            continue
        n, field = m.groups()
        if n not in raw:
            order.append(n)
            raw[n] = {}
        value = form.get(name)
        raw[n][field] = value if isinstance(value, str) else ""
    steps: list[dict[str, Any]] = []
    shown: dict[str, str] = {}
    errors: dict[str, str] = {}
    for i, n in enumerate(order):
        r = raw[n]
        unit = r.get("delay_unit", "minutes")
        for field in STEP_FIELDS:
            shown[f"recovery.steps.{i}.{field}"] = r.get(field, "")
        step: dict[str, Any] = {
            "subject": r.get("subject", "").strip() or None,
            "preheader": r.get("preheader", "").strip() or None,
            "discount_code": r.get("discount_code", "").strip() or None,
            "use_code_pool": "use_code_pool" in r,
        }
        try:
            delay = float(r.get("delay", "0").strip() or "0")
            if unit not in DELAY_UNITS:
                raise ValueError
        except ValueError:
            errors[f"recovery.steps.{i}.delay"] = "a number, like 1 or 2.5"
            delay = 0
        step["delay_minutes"] = delay * DELAY_UNITS.get(unit, 1)
        steps.append(step)
    return steps, shown, errors


def _webhooks_from_form(form: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, str]]:
    """(the webhooks, as the form shows them again, errors): in the order the form lists them; a row
    left with no address is no webhook (an added row the marketer did not fill in)."""
    hooks: list[dict[str, Any]] = []
    shown: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    for name in form:
        m = _HOOK_KEY.match(name)
        if m is None:
            continue
        raw = form.get(name)
        url = raw.strip() if isinstance(raw, str) else ""
        events = [e for e in WEBHOOK_EVENTS if f"webhooks.{m.group(1)}.events.{e}" in form]
        if not url:
            continue
        if not events:
            errors[f"webhooks.{len(hooks)}.events"] = "choose at least one event"
        hooks.append({"url": url, "events": events})
        shown.append({"url": url, "events": events})
    return hooks, shown, errors


def _new_test(form: Any, doc: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """A test started from the form's plain fields: what varies, and a value and a share for each variant."""
    shown = {k: str(form.get(k) or "") for k in form if k.startswith("new_test.")}
    name = str(form.get("new_test.name") or "").strip()
    if not name:
        return shown, {}
    errors: dict[str, str] = {}
    what = str(form.get("new_test.kind") or "")
    variants: list[dict[str, Any]] = []
    for i in range(4):
        value = str(form.get(f"new_test.variant.{i}.value") or "").strip()
        share = str(form.get(f"new_test.variant.{i}.share") or "").strip()
        if not value and not share:
            continue
        try:
            weight = float(share or "1")
        except ValueError:
            errors[f"new_test.variant.{i}.share"] = "a number, like 50"
            continue
        v: dict[str, Any] = {"name": chr(ord("A") + len(variants)), "weight": weight}
        if what.startswith("popup."):
            if value:
                v["popup"] = {what.split(".", 1)[1]: value}
        elif what == "discount":
            v["discount_code"] = value or None
        elif what == "subject":
            v["subject"] = value or None
        variants.append(v)
    if what not in TEST_KINDS:
        errors["new_test.kind"] = "choose what the test changes"
    if len(variants) < 2:
        errors["new_test.variant.0.value"] = "a test needs at least two variants"
    if errors:
        return shown, errors
    kind = "popup" if what.startswith("popup.") else what
    exp: dict[str, Any] = {"name": name, "kind": kind, "variants": variants}
    if kind == "subject":
        try:
            exp["step"] = max(0, int(str(form.get("new_test.step") or "1")) - 1)
        except ValueError:
            errors["new_test.step"] = "the step's number, like 1"
            return shown, errors
    doc.setdefault("experiments", []).append(exp)
    return shown, {}


def from_form(form: Any, current: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """(the document to validate, the values to show again, errors found before validation)."""
    doc = json.loads(json.dumps(current))
    shown: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for f in fields():
        if f.kind == "bool":
            if f"present.{f.section}" not in form:
                continue  # its section was not on this form: the stored value stays
            value: Any = f.key in form
            shown[f.key] = value
            _set(doc, f.path, value)
            continue
        if f.kind == "webhooks":
            if "webhooks.present" not in form:
                continue
            hooks, shown[f.key], hook_errors = _webhooks_from_form(form)
            errors.update(hook_errors)
            _set(doc, f.path, hooks)
            continue
        if f.kind == "steps":
            if "recovery.steps.present" not in form:
                continue  # not on this form: the stored steps stay
            steps, step_shown, step_errors = _steps_from_form(form)
            shown.update(step_shown)
            shown[f.key] = [
                {k: step_shown.get(f"recovery.steps.{i}.{k}", "") for k in STEP_FIELDS} for i in range(len(steps))
            ]
            for s in shown[f.key]:
                s["use_code_pool"] = s["use_code_pool"] != ""
            errors.update(step_errors)
            _set(doc, f.path, steps)
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
    test_shown, test_errors = _new_test(form, doc)
    shown.update(test_shown)
    errors.update(test_errors)
    return doc, shown, errors


def errors_by_field(exc: ValidationError) -> dict[str, str]:
    """Each validation error under the field it belongs to (the longest matching key); a step's under its own field."""
    keys = [f.key for f in fields()]
    out: dict[str, str] = {}
    for loc, msg in validation_errors_by_key(exc).items():
        m = re.match(r"^recovery\.steps\.(\d+)\.(\w+)", loc)
        hook = re.match(r"^webhooks\.(\d+)\.(url|events)", loc)
        if m is not None:
            field = "delay" if m.group(2) == "delay_minutes" else m.group(2)
            target, text = f"recovery.steps.{m.group(1)}.{field}", msg
        elif hook is not None:
            target, text = f"webhooks.{hook.group(1)}.{hook.group(2)}", msg
        else:
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
