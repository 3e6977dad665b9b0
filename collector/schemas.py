"""Pydantic models: the settings document of a site and the bodies the snippet sends."""

from __future__ import annotations

import re
from email.utils import getaddresses, parseaddr
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from collector.addresses import check_email
from collector.locales import LocaleSetting, primary
from collector.netguard import check_webhook_url

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
CLIENT_ID_RE = r"^[A-Za-z0-9_-]{8,64}$"
HEX_COLOR_RE = r"^#[0-9A-Fa-f]{3}(?:[0-9A-Fa-f]{3})?$"
NAME_RE = r"^[A-Za-z0-9_-]{1,64}$"


def _no_control(value: str) -> str:
    # NUL and other control characters corrupt CSVs and logs; no shopper types them.
    if _CONTROL.search(value):
        raise ValueError("control characters are not allowed")
    return value


def _one_line(value: str) -> str:
    # A text that ends up in a header, a button or a single line of the popup: a line break or a
    # tab there makes a malformed header or a broken layout, never what the owner meant.
    if any(c in value for c in "\r\n\t"):
        raise ValueError("must be one line (no line breaks or tabs)")
    return value


def _email(value: str) -> str:
    # A shopper's address: stripped, checked and normalised by the project's one checker.
    return check_email(value)


def _http_url(value: str) -> str:
    if not re.match(r"^https?://[^\s/]+", value):
        raise ValueError("must be an http:// or https:// URL")
    return value


def _https_url(value: str) -> str:
    # Shown in every reminder: a plain http image is blocked or flagged by most mail clients.
    if not re.match(r"^https://[^\s/\"'<>]+[^\s\"'<>]*$", value):
        raise ValueError("must be an https:// URL")
    return value


def _from_address(value: str) -> str:
    # The shop's sender, kept as written (display name and all); its address must pass check_email,
    # which lets a .test domain through here for test and staging set-ups. Exactly one address:
    # parseaddr reads "a@x, b@evil" as its first address, but a mail client would show both.
    _one_line(value)
    if len(getaddresses([value])) != 1 or "," in value.replace(parseaddr(value)[0], "", 1):
        raise ValueError('must be exactly one address, like "Shop <shop@example.com>"')
    _, addr = parseaddr(value)
    try:
        check_email(addr, allow_test_domain=True)
    except ValueError as exc:
        raise ValueError(f'must be an address like "Shop <shop@example.com>" ({exc})') from None
    return value


def _currency(value: str) -> str:
    value = value.upper()
    if not re.match(r"^[A-Z]{3}$", value):
        raise ValueError("must be a 3-letter ISO 4217 code")
    return value


# Text of at most N characters (and at least M where named TextN_M), no control characters.
Text1000 = Annotated[str, Field(max_length=1000), AfterValidator(_no_control)]
Text128_1 = Annotated[str, Field(max_length=128, min_length=1), AfterValidator(_no_control)]
Text200 = Annotated[str, Field(max_length=200), AfterValidator(_no_control)]
Text200_1 = Annotated[str, Field(max_length=200, min_length=1), AfterValidator(_no_control)]
Text300 = Annotated[str, Field(max_length=300), AfterValidator(_no_control)]
Text300_1 = Annotated[str, Field(max_length=300, min_length=1), AfterValidator(_no_control)]
Text60_1 = Annotated[str, Field(max_length=60, min_length=1), AfterValidator(_no_control)]
Text64 = Annotated[str, Field(max_length=64), AfterValidator(_no_control)]
Text64_1 = Annotated[str, Field(max_length=64, min_length=1), AfterValidator(_no_control)]
Text80 = Annotated[str, Field(max_length=80), AfterValidator(_no_control)]
Text80_1 = Annotated[str, Field(max_length=80, min_length=1), AfterValidator(_no_control)]
# The same, one line only (settings texts that become headers, buttons, subjects and codes).
Line200 = Annotated[Text200, AfterValidator(_one_line)]
Line200_1 = Annotated[Text200_1, AfterValidator(_one_line)]
Line60_1 = Annotated[Text60_1, AfterValidator(_one_line)]
Line64 = Annotated[Text64, AfterValidator(_one_line)]
Line80_1 = Annotated[Text80_1, AfterValidator(_one_line)]
Email = Annotated[str, Field(max_length=320), AfterValidator(_no_control), AfterValidator(_email)]
HttpsUrl = Annotated[str, Field(max_length=2048), AfterValidator(_no_control), AfterValidator(_https_url)]
HttpUrl = Annotated[str, Field(max_length=2048), AfterValidator(_no_control), AfterValidator(_http_url)]
# Where the collector itself sends requests: the URL checked in full (scheme, host, port).
WebhookUrl = Annotated[str, Field(max_length=2048), AfterValidator(check_webhook_url)]
Currency = Annotated[str, Field(min_length=3, max_length=3), AfterValidator(_currency)]
ClientId = Annotated[str, Field(pattern=CLIENT_ID_RE)]
# A platform's cart token as the snippet read it (Shopify's /cart.js `token`, "?key=…" cut off).
PlatformToken = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_:.=/+-]+$")]
# A webhook secret as the platform shows it: printable, no spaces.
Secret = Annotated[str, Field(min_length=8, max_length=200, pattern=r"^[\x21-\x7e]+$")]
Color = Annotated[str, Field(pattern=HEX_COLOR_RE)]
Name = Annotated[str, Field(pattern=NAME_RE)]
Variants = Annotated[dict[Name, Name], Field(max_length=20)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


# -- the settings document ------------------------------------------------------
class Pages(Strict):
    include: list[Text300] = Field(default_factory=list, max_length=50)
    exclude: list[Text300] = Field(default_factory=list, max_length=50)


class Colors(Strict):
    # Each default pair passes WCAG AA (4.5:1): #fff on #c2410c is 5.18:1, #1f2933 on #fff 14.8:1.
    background: Color = "#ffffff"
    text: Color = "#1f2933"
    button: Color = "#c2410c"
    button_text: Color = "#ffffff"


class ColorsOverride(Strict):
    """The colours a test variant changes: only the keys it names (the others stay the site's)."""

    background: Color | None = None
    text: Color | None = None
    button: Color | None = None
    button_text: Color | None = None


class Popup(Strict):
    # The texts left null take the locale's default (collector/locales); what the site writes is shown as written.
    enabled: bool = True
    headline: Line200_1 | None = None
    body: Text1000 | None = None
    button: Line60_1 | None = None
    discount_code: Line64 | None = "SAVE10"
    require_consent: bool = False
    consent_text: Text300 | None = None
    delay_ms: int = Field(1000, ge=0, le=600_000)
    sensitivity_px: int = Field(20, ge=0, le=500)
    cap_days: float = Field(7, ge=0, le=3650)
    only_with_cart: bool = True
    mobile: bool = True
    pages: Pages = Field(default_factory=Pages)
    reasons: list[Line80_1] | None = Field(None, max_length=10)
    colors: Colors = Field(default_factory=Colors)
    shipping_note: Line200 | None = None


class PopupOverride(Strict):
    """The popup keys an experiment's variant may change."""

    headline: Line200_1 | None = None
    body: Text1000 | None = None
    button: Line60_1 | None = None
    discount_code: Line64 | None = None
    reasons: list[Line80_1] | None = Field(None, max_length=10)
    colors: ColorsOverride | None = None
    shipping_note: Line200 | None = None


class Step(Strict):
    delay_minutes: float = Field(0, ge=0, le=525_600)
    # Null: the locale's subject (collector/locales).
    subject: Line200_1 | None = None
    discount_code: Line64 | None = None
    # Hand out one code per email from the pool imported with `cartback codes import`.
    use_code_pool: bool = False
    preheader: Line200 | None = None


def _default_steps() -> list[Step]:
    return [
        Step(delay_minutes=0),
        Step(delay_minutes=1440, discount_code="SAVE10"),
    ]


class RecoveryEmail(Strict):
    """What a reminder looks like; a null text is the locale's."""

    logo_url: HttpsUrl | None = None
    # The button's background; its text is white or near-black, whichever passes WCAG AA (collector/contrast.py).
    brand_color: Color = "#c2410c"
    heading: Text200 | None = None
    intro: Text1000 | None = None
    button: Text60_1 | None = None
    footer: Text1000 | None = None


class Recovery(Strict):
    enabled: bool = True
    abandon_after_minutes: float = Field(60, ge=0, le=525_600)
    steps: list[Step] = Field(default_factory=_default_steps, max_length=10)
    from_: Annotated[
        str, Field(alias="from", max_length=300), AfterValidator(_no_control), AfterValidator(_from_address)
    ] = "Shop <shop@example.com>"
    cart_url: HttpUrl = "https://shop.example/cart"
    attribution_days: float = Field(5, ge=0, le=365)
    # New reminder sequences one site may start in an hour: a flood of carts made up from a
    # console cannot turn the shop into a mass mailer (the dashboard warns when it is reached).
    max_new_sequences_per_hour: int = Field(500, ge=1, le=1_000_000)
    email: RecoveryEmail = Field(default_factory=RecoveryEmail)
    # This share of shoppers (by address, collector/experiments/holdout.py) gets no reminders.
    holdout_percent: float = Field(0, ge=0, le=50)

    model_config = ConfigDict(extra="forbid", validate_default=True, populate_by_name=True)


WebhookEvent = Literal["lead", "abandoned", "recovered"]
WEBHOOK_EVENTS: tuple[WebhookEvent, ...] = ("lead", "abandoned", "recovered")


class Webhook(Strict):
    url: WebhookUrl
    events: list[WebhookEvent] = Field(default_factory=lambda: list(WEBHOOK_EVENTS), max_length=3)


class Variant(Strict):
    name: Name
    weight: float = Field(1, gt=0, le=1000)
    popup: PopupOverride | None = None
    discount_code: Line64 | None = None
    subject: Line200_1 | None = None


def _unique(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"two {what}s are named {name!r}; names must differ")
        seen.add(name)


class Experiment(Strict):
    name: Name
    kind: Literal["popup", "discount", "subject"]
    enabled: bool = True
    # For subject experiments: which reminder step (0-based) the subjects replace.
    step: int = Field(0, ge=0, le=9)
    variants: list[Variant] = Field(min_length=2, max_length=10)
    min_sample: int = Field(500, ge=1, le=10_000_000)
    min_probability: float = Field(0.95, gt=0.5, lt=1)

    @field_validator("variants")
    @classmethod
    def _unique_variants(cls, variants: list[Variant]) -> list[Variant]:
        # Two variants of one name would share every shopper's score and every count.
        _unique([v.name for v in variants], "variant")
        return variants


class Platform(Strict):
    """The storefront platform the tag works with by itself (reference: "Storefront platforms")."""

    kind: Literal["auto", "shopify", "woocommerce", "none"] = "auto"
    email_fields: bool = True
    # Keys of the platforms' order webhooks (HMAC-SHA256); null refuses every delivery.
    shopify_webhook_secret: Secret | None = None
    woocommerce_webhook_secret: Secret | None = None


class SiteSettings(Strict):
    locale: LocaleSetting = "en"
    popup: Popup = Field(default_factory=Popup)
    recovery: Recovery = Field(default_factory=Recovery)
    webhooks: list[Webhook] = Field(default_factory=list, max_length=10)
    experiments: list[Experiment] = Field(default_factory=list, max_length=20)
    platform: Platform = Field(default_factory=Platform)
    # Events and closed carts older than this are deleted by the sweep (leads, orders and
    # unsubscribes are kept); at least a day, so a slip of the finger cannot empty a site.
    retention_days: float = Field(400, ge=1, le=36_500)

    @field_validator("experiments")
    @classmethod
    def _unique_experiments(cls, experiments: list[Experiment]) -> list[Experiment]:
        # Leads, events and emails name their experiment: one name must mean one test.
        _unique([e.name for e in experiments], "experiment")
        return experiments

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


def format_validation_error(exc: ValidationError) -> str:
    """One line that names the key: 'popup.delay_ms: Input should be ...'."""
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"] if p != "from_") or "(document)"
        loc = loc.replace("from_", "from")
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def validation_errors_by_key(exc: ValidationError) -> dict[str, str]:
    """For forms: the message for each dotted key."""
    out: dict[str, str] = {}
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]).replace("from_", "from")
        out.setdefault(loc, "unknown key" if err["type"] == "extra_forbidden" else err["msg"])
    return out


# -- what the snippet sends ---------------------------------------------------------
class Ingest(BaseModel):
    # Unknown keys are ignored so that an older collector accepts a newer snippet.
    model_config = ConfigDict(extra="ignore")
    id: ClientId
    vid: ClientId


class CartItem(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: Text128_1
    name: Text300_1
    price: float = Field(ge=0, le=1_000_000_000, allow_inf_nan=False)
    quantity: int = Field(ge=1, le=100_000)
    image: Annotated[str, Field(max_length=2048), AfterValidator(_no_control)] | None = None
    url: Annotated[str, Field(max_length=2048), AfterValidator(_no_control)] | None = None


def _page_locale(value: str | None) -> str | None:
    # The page's language as the snippet resolved it; anything unsupported is English's business, not an error.
    return primary(value)


class CartIn(Ingest):
    items: list[CartItem] = Field(max_length=100)
    currency: Currency
    locale: Annotated[str | None, Field(max_length=35), AfterValidator(_page_locale)] = None
    # Set by the platform adapters: what the platform's order webhook names the cart by.
    platform_token: PlatformToken | None = None


class EventIn(Ingest):
    type: Literal["shown", "closed", "reason", "checkout"]
    reason: Text80 | None = None
    step: Text80 | None = None
    variants: Variants | None = None


class LeadIn(Ingest):
    email: Email
    consent: bool = False
    discount_code: Text64 | None = None
    variants: Variants | None = None
    hp: Text300 | None = None


class IdentifyIn(Ingest):
    email: Email
    consent: bool | None = None


class PurchaseIn(Ingest):
    order_id: Text128_1
    value: float = Field(ge=0, le=1_000_000_000, allow_inf_nan=False)
    currency: Currency


class OrderIn(BaseModel):
    """POST /api/v1/orders, from the store's server."""

    model_config = ConfigDict(extra="forbid")
    site: Text64_1
    order_id: Text128_1
    value: float = Field(ge=0, le=1_000_000_000, allow_inf_nan=False)
    currency: Currency
    email: Email | None = None
    cart_token: Text1000 | None = None
