// The popup (static/cartback-popup.js, a second file the core fetches at idle time, see lazy.js): a
// dialog in an open shadow root on <div id="cartback-popup">, so no page CSS gets in or out. Focus is
// kept inside while it is open and handed back after; Escape and the close button close it. What it
// shares with the core (state, outbox, storage, the address check) comes through the core's hand-off
// object, never a second copy: only tiny stateless helpers of util.js are bundled here again.
import CSS from "./popup.css";
import { d, emit, now, on, w } from "./util.js";

const U = w.cartback && w.cartback.u;
const { S, s: send, t: set, m: isEmail } = U || {};
let host, root, back, listening;

const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const $ = (sel) => root.querySelector(sel);

const focusables = () => [...root.querySelectorAll("button,input:not(.h)")].filter((e) => e.offsetParent);

const first = () => ($(".f input,.f button") || focusables()[0]).focus();

const event = (type, extra) => send("event", { type, variants: S.variants, ...extra });

const open = () => {
  // Each text: the site's own (or its test variant's), else the locale's default from the collector.
  const P = S.P, T = S.T, t = (k) => esc(P[k] || T[k]), reasons = P.reasons || T.reasons || [];
  if (host) return;
  // The tag may sit in <head> and run (and be asked to show) before there is a body.
  if (!d.body) return on(d, "DOMContentLoaded", open);
  back = d.activeElement;
  host = d.createElement("div");
  host.id = "cartback-popup";
  root = host.attachShadow({ mode: "open" });
  // A constructed sheet passes a strict Content-Security-Policy (style-src without 'unsafe-inline').
  try {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    root.adoptedStyleSheets = [sheet];
  } catch (e) {
    root.innerHTML = `<style>${CSS}</style>`;
  }
  root.innerHTML += `<div class="o"><div class="d" role="dialog" aria-modal="true" aria-labelledby="t" aria-describedby="m" lang="${esc(S.lang)}">
<button class="x" type="button" aria-label="${t("close")}">&times;</button><h2 id="t">${t("headline")}</h2><p id="m">${t("body")}</p>
<div class="f"><form novalidate><input type="email" name="email" autocomplete="email" required placeholder="${t("email_placeholder")}" aria-label="${t("email_label")}">${
  P.require_consent ? `<label><input type="checkbox" name="consent"><span>${t("consent_text")}</span></label>` : ""
}<input class="h" name="website" tabindex="-1" autocomplete="off" aria-hidden="true"><div class="e" role="alert"></div><button class="b" type="submit">${t("button")}</button></form></div>${
  reasons.length ? `<div class="r"><p>${t("reasons_prompt")}</p>${reasons.map((r) => `<button type="button">${esc(r)}</button>`).join("")}</div>` : ""
}${P.shipping_note ? `<p class="s">${esc(P.shipping_note)}</p>` : ""}</div></div>`;
  // The site's colours, as the custom properties popup.css reads (--background, --text, --button, --button_text).
  for (const k in P.colors) $(".d").style.setProperty("--" + k, P.colors[k]);
  d.body.appendChild(host);

  on($(".x"), "click", close);
  // A click on the dimmed backdrop (outside the dialog) closes it too.
  on($(".o"), "click", (e) => e.target == $(".o") && close());
  on($("form"), "submit", submit);
  for (const b of root.querySelectorAll(".r button")) on(b, "click", () => {
    event("reason", { reason: b.textContent });
    $(".r").innerHTML = `<p>${esc(S.T.reasons_thanks)}</p>`;
    first();
  });
  if (!listening) {
    listening = 1;
    on(d, "keydown", keys, true);
    // Focus that lands outside the dialog while it is open is brought back in.
    on(d, "focusin", (e) => host && e.target != host && first());
  }
  first();
  event("shown");
  emit("shown", { variants: S.variants });
};

const keys = (e) => {
  if (!host) return;
  if (e.key == "Escape") {
    e.preventDefault();
    close();
  } else if (e.key == "Tab") {
    const f = focusables(), i = f.indexOf(root.activeElement), n = f.length - 1;
    if (e.shiftKey ? i < 1 : i < 0 || i == n) {
      e.preventDefault();
      f[e.shiftKey ? n : 0].focus();
    }
  }
};

const submit = (e) => {
  const T = S.T, el = e.target.elements, input = el.email, email = input.value.trim(), code = S.P.discount_code, hp = el.website.value, err = $(".e");
  e.preventDefault();
  err.textContent = "";
  input.removeAttribute("aria-invalid");
  if (!isEmail(email)) {
    err.textContent = T.invalid_email;
    input.setAttribute("aria-invalid", "true");
    return input.focus();
  }
  if (el.consent && !el.consent.checked) {
    err.textContent = T.need_consent;
    return el.consent.focus();
  }
  send("lead", { email, consent: !!el.consent, variants: S.variants, discount_code: code || undefined, hp: hp || undefined });
  set("lead", now());
  // Accepted as soon as it is in the outbox: the code shows at once, even offline.
  $(".f").innerHTML = code
    ? `<p>${esc(T.your_code)}</p><strong data-cartback-code>${esc(code)}</strong><button class="b" type="button">${esc(T.copy)}</button>`
    : `<p>${esc(T.thanks)}</p>`;
  if (code) on($(".f button"), "click", (ev) => {
    const done = () => (ev.target.textContent = T.copied);
    // Without the async clipboard (plain http), select the code for the shopper to copy.
    const old = () => getSelection().selectAllChildren($("[data-cartback-code]"));
    try {
      navigator.clipboard.writeText(code).then(done, old);
    } catch (x) {
      old();
    }
  });
  first();
  if (!hp) emit("lead", { email, discount_code: code || null });
};

const close = () => {
  const b = back;
  if (!host) return;
  host.remove();
  host = root = back = null;
  set("closed", now());
  event("closed");
  emit("closed", { variants: S.variants });
  if (b && b.focus && d.contains(b)) b.focus();
};

// Ready: the core opens the popup through U.o from now on, and at once if it was asked for already.
if (U) {
  U.o = open;
  if (U.w) open();
}
