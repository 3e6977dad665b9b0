// The popup: a dialog in an open shadow root on <div id="cartback-popup">, so no page CSS gets in or
// out. Focus is kept inside while it is open and handed back after; Escape and the close button close it.
import { send } from "./outbox.js";
import { S } from "./state.js";
import { set } from "./storage.js";
import { d, emit, now, on } from "./util.js";

var host, root, back, listening;

function esc(s) {
  return String(s == null ? "" : s).replace(/[&<>"']/g, function (c) {
    return "&#" + c.charCodeAt(0) + ";";
  });
}

function color(c, k, dflt) {
  var v = c && c[k];
  return /^#[0-9a-f]{3,8}$/i.test(v) ? v : dflt;
}

function css(c) {
  var bg = color(c, "background", "#fff"), tx = color(c, "text", "#1f2933");
  return ":host{all:initial}"
    + ".o{position:fixed;top:0;left:0;right:0;bottom:0;z-index:2147483647;display:flex;align-items:center;justify-content:center;padding:12px;box-sizing:border-box;background:rgba(0,0,0,.5);font:16px/1.4 system-ui,-apple-system,sans-serif}"
    + ".d{position:relative;box-sizing:border-box;width:100%;max-width:420px;max-height:100%;overflow:auto;padding:24px 20px 20px;border-radius:10px;box-shadow:0 10px 40px rgba(0,0,0,.3);background:" + bg + ";color:" + tx + "}"
    + "h2{margin:0 32px 8px 0;font-size:22px;line-height:1.25}p{margin:0 0 12px}"
    + "input,button{font:inherit;box-sizing:border-box}"
    + "input[type=email]{display:block;width:100%;padding:10px 12px;margin-bottom:8px;border:1px solid #8a8f98;border-radius:6px;color:#111;background:#fff}"
    + ".b{display:block;width:100%;padding:11px;border:0;border-radius:6px;font-weight:600;cursor:pointer;background:" + color(c, "button", "#d9480f") + ";color:" + color(c, "button_text", "#fff") + "}"
    + ".x{position:absolute;top:6px;right:6px;width:40px;height:40px;border:0;background:none;color:inherit;font-size:28px;line-height:1;cursor:pointer}"
    + "label{display:flex;gap:8px;align-items:flex-start;margin-bottom:8px;font-size:14px}"
    + ".h{position:absolute;left:-9999px;width:1px;height:1px;opacity:0}"
    + ".e{margin-bottom:8px;color:#c81e1e;font-size:14px}.e:empty{display:none}"
    + ".r{margin-top:16px;font-size:14px}.r button{margin:0 6px 6px 0;padding:6px 12px;border:1px solid;border-radius:16px;background:none;color:inherit;cursor:pointer}"
    + ".s{margin:12px 0 0;font-size:13px;opacity:.8}"
    + "[data-cartback-code]{display:block;margin-bottom:8px;padding:10px;border:2px dashed;border-radius:6px;font:700 22px/1.3 ui-monospace,monospace;text-align:center;user-select:all;word-break:break-all}"
    + ":focus-visible{outline:3px solid #2563eb;outline-offset:2px}";
}

function $(sel) {
  return root.querySelector(sel);
}

function focusables() {
  return [].filter.call(root.querySelectorAll("button,input:not(.h)"), function (e) {
    return !e.disabled && e.offsetParent;
  });
}

function first() {
  var f = focusables(), e = $("[name=email]") || f[0];
  if (e) e.focus();
}

function event(type, extra) {
  send("event", Object.assign({ type: type, variants: S.variants }, extra));
}

export function isOpen() {
  return !!host;
}

export function open() {
  var P = S.P, reasons = P.reasons || [], cons = P.require_consent;
  if (host || !d.body) return;
  back = d.activeElement;
  host = d.createElement("div");
  host.id = "cartback-popup";
  root = host.attachShadow({ mode: "open" });
  root.innerHTML = "<style>" + css(P.colors) + "</style>"
    + '<div class="o"><div class="d" role="dialog" aria-modal="true" aria-labelledby="t" aria-describedby="m">'
    + '<button class="x" type="button" aria-label="Close">&times;</button>'
    + '<h2 id="t">' + esc(P.headline) + "</h2>"
    + '<p id="m">' + esc(P.body) + "</p>"
    + '<div class="f"><form novalidate>'
    + '<input type="email" name="email" autocomplete="email" required placeholder="you@example.com" aria-label="Email address">'
    + (cons ? '<label><input type="checkbox" name="consent"><span>' + esc(P.consent_text || "Email me about my cart and offers.") + "</span></label>" : "")
    // The honeypot: off screen and out of the tab order, so people leave it empty and bots fill it.
    + '<input class="h" name="website" tabindex="-1" autocomplete="off" aria-hidden="true">'
    + '<div class="e" role="alert"></div>'
    + '<button class="b" type="submit">' + esc(P.button) + "</button></form></div>"
    + (reasons.length ? '<div class="r"><p>Not buying today? Tell us why:</p>' + reasons.map(function (r) {
      return '<button type="button">' + esc(r) + "</button>";
    }).join("") + "</div>" : "")
    + (P.shipping_note ? '<p class="s">' + esc(P.shipping_note) + "</p>" : "")
    + "</div></div>";
  d.body.appendChild(host);

  on($(".x"), "click", close);
  on($(".o"), "click", function (e) {
    // A click on the dimmed backdrop (outside the dialog) closes it too.
    if (e.target == $(".o")) close();
  });
  on($("form"), "submit", submit);
  [].forEach.call(root.querySelectorAll(".r button"), function (b) {
    on(b, "click", function () {
      event("reason", { reason: b.textContent });
      $(".r").innerHTML = "<p>Thanks for telling us.</p>";
      first();
    });
  });
  if (!listening) {
    listening = 1;
    on(d, "keydown", keys, true);
    // Focus that lands outside the dialog while it is open is brought back in.
    on(d, "focusin", function (e) {
      if (host && e.target != host) first();
    });
  }
  first();
  event("shown");
  emit("shown", { variants: S.variants });
}

function keys(e) {
  var f, a, i;
  if (!host) return;
  if (e.key == "Escape" || e.key == "Esc") {
    e.preventDefault();
    close();
  } else if (e.key == "Tab") {
    f = focusables();
    a = root.activeElement;
    i = f.indexOf(a);
    if (e.shiftKey ? i <= 0 : i < 0 || i == f.length - 1) {
      e.preventDefault();
      f[e.shiftKey ? f.length - 1 : 0].focus();
    }
  }
}

function submit(e) {
  var form = e.target, el = form.elements, email = el.email.value.trim(), code = S.P.discount_code, hp = el.website.value, err = $(".e"), body;
  e.preventDefault();
  err.textContent = "";
  // The same shape the collector accepts (collector/schemas.py EMAIL_RE), checked before sending.
  if (email.length > 254 || !/^[^@\s"'<>(),;:\\[\]]{1,64}@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$/i.test(email)) {
    err.textContent = "Please enter a valid email address.";
    el.email.setAttribute("aria-invalid", "true");
    return el.email.focus();
  }
  el.email.removeAttribute("aria-invalid");
  if (el.consent && !el.consent.checked) {
    err.textContent = "Please tick the box to get your code.";
    return el.consent.focus();
  }
  body = { email: email, consent: !!(el.consent && el.consent.checked), variants: S.variants };
  if (code) body.discount_code = code;
  if (hp) body.hp = hp;
  send("lead", body);
  set("lead", now());
  // Accepted as soon as it is in the outbox: the code shows at once, even offline.
  $(".f").innerHTML = code
    ? "<p>Your code:</p><strong data-cartback-code>" + esc(code) + '</strong><button class="b" type="button">Copy code</button>'
    : "<p>Thanks! We'll keep your cart for you.</p>";
  if (code) on($(".f button"), "click", function (ev) {
    copy(code, ev.target);
  });
  first();
  if (!hp) emit("lead", { email: email, discount_code: code || null });
}

function copy(code, btn) {
  function done() {
    btn.textContent = "Copied";
  }
  var c = navigator.clipboard, r, sel;
  if (c && c.writeText) c.writeText(code).then(done, function () {});
  else {
    r = d.createRange();
    r.selectNodeContents($("[data-cartback-code]"));
    sel = getSelection();
    sel.removeAllRanges();
    sel.addRange(r);
    if (d.execCommand("copy")) done();
  }
}

export function close() {
  var b = back;
  if (!host) return;
  host.remove();
  host = root = back = null;
  set("closed", now());
  event("closed");
  emit("closed", { variants: S.variants });
  if (b && b.focus && d.contains(b)) b.focus();
}
