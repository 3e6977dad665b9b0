// Cartback dashboard: copy buttons. A static file, so the pages need no inline script (CSP).
(function () {
  "use strict";
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "offscreen";
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      document.body.removeChild(area);
      if (ok) { resolve(); } else { reject(new Error("copy failed")); }
    });
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button[data-copy-target]") : null;
    if (!button) { return; }
    var target = document.getElementById(button.getAttribute("data-copy-target"));
    if (!target) { return; }
    var label = button.textContent;
    copyText(target.textContent).then(function () {
      button.textContent = "Copied";
    }, function () {
      var range = document.createRange();
      range.selectNodeContents(target);
      var sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      button.textContent = "Press Ctrl+C";
    });
    setTimeout(function () { button.textContent = label; }, 2000);
  });
})();

// The settings editor: reminder steps added, removed and moved; their summary lines; the live preview of
// the unsaved values (the form posted into the preview frames); desktop and phone widths; contrast warnings.
(function () {
  "use strict";
  var form = document.getElementById("settings-form");
  if (!form) { return; }
  var list = form.querySelector("[data-steps]");
  var template = document.getElementById("step-template");
  var next = list ? list.children.length : 0;
  var UNIT = { minutes: 1, hours: 60, days: 1440 };

  function summary(li) {
    var n = parseFloat(li.querySelector("[data-step-delay]").value) || 0;
    var unit = li.querySelector("[data-step-unit]").value;
    var subject = li.querySelector("[data-step-subject]");
    var code = li.querySelector("[data-step-code]").value.trim();
    var when = n === 0 ? "As soon as the cart is abandoned"
      : n + " " + (n === 1 ? unit.slice(0, -1) : unit) + " after the cart is abandoned";
    li.querySelector("[data-step-summary]").textContent =
      when + ": \u201c" + (subject.value.trim() || subject.placeholder) + "\u201d" + (code ? " with code " + code : "");
  }
  function stepsChanged() {
    var items = list.querySelectorAll("[data-step]");
    var select = document.getElementById("f-preview-step");
    for (var i = 0; i < items.length; i++) { summary(items[i]); }
    if (select) {
      var keep = select.value;
      select.innerHTML = "";
      for (var j = 0; j < items.length; j++) {
        var o = document.createElement("option");
        o.value = String(j);
        o.textContent = "Step " + (j + 1);
        select.appendChild(o);
      }
      if (+keep < items.length) { select.value = keep; }
    }
  }
  if (list && template) {
    form.querySelector("[data-step-add]").addEventListener("click", function () {
      var holder = document.createElement("div");
      holder.innerHTML = template.innerHTML.replace(/__N__/g, String(next++));
      var li = holder.firstElementChild;
      list.appendChild(li);
      stepsChanged();
      li.querySelector("[data-step-delay]").focus();
      schedule();
    });
    list.addEventListener("click", function (e) {
      var b = e.target.closest("button");
      var li = b && b.closest("[data-step]");
      if (!li) { return; }
      if (b.hasAttribute("data-step-remove")) {
        var focusTo = li.nextElementSibling || li.previousElementSibling;
        li.remove();
        (focusTo ? focusTo.querySelector("[data-step-delay]") : form.querySelector("[data-step-add]")).focus();
      } else if (b.hasAttribute("data-step-up") && li.previousElementSibling) {
        list.insertBefore(li, li.previousElementSibling);
        b.focus();
      } else if (b.hasAttribute("data-step-down") && li.nextElementSibling) {
        list.insertBefore(li.nextElementSibling, li);
        b.focus();
      } else { return; }
      stepsChanged();
      schedule();
    });
  }

  // The webhooks: a row per address, added and removed (their order does not matter).
  var hooks = form.querySelector("[data-hooks]");
  var hookTemplate = document.getElementById("hook-template");
  var nextHook = hooks ? hooks.children.length : 0;
  if (hooks && hookTemplate) {
    form.querySelector("[data-hook-add]").addEventListener("click", function () {
      var holder = document.createElement("div");
      holder.innerHTML = hookTemplate.innerHTML.replace(/__N__/g, String(nextHook++));
      var li = holder.firstElementChild;
      hooks.appendChild(li);
      li.querySelector("[data-hook-url]").focus();
    });
    hooks.addEventListener("click", function (e) {
      var b = e.target.closest("button[data-hook-remove]");
      var li = b && b.closest("[data-hook]");
      if (!li) { return; }
      var focusTo = li.nextElementSibling || li.previousElementSibling;
      li.remove();
      (focusTo ? focusTo.querySelector("[data-hook-url]") : form.querySelector("[data-hook-add]")).focus();
    });
  }

  // WCAG contrast of the popup's own colours, as the marketer picks them.
  function lum(hex) {
    var c = [1, 3, 5].map(function (i) {
      var s = parseInt(hex.substr(i, 2), 16) / 255;
      return s <= 0.04045 ? s / 12.92 : Math.pow((s + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  }
  function ratio(a, b) {
    var x = lum(a), y = lum(b);
    return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
  }
  function contrast() {
    var box = form.querySelector("[data-contrast-warnings]");
    var get = function (k) { var el = form.querySelector('[data-color="' + k + '"]'); return el && el.value; };
    if (!box || !get("background")) { return; }
    var out = [];
    [["text", "background", "text on the background"], ["button_text", "button", "button text on the button"]].forEach(function (p) {
      var r = ratio(get(p[0]), get(p[1]));
      if (r < 4.5) { out.push("The popup's " + p[2] + " has a contrast of " + r.toFixed(2) + ":1; WCAG AA asks for 4.5:1."); }
    });
    box.innerHTML = "";
    out.forEach(function (t) {
      var p = document.createElement("p");
      p.className = "warning";
      p.setAttribute("role", "status");
      p.textContent = t;
      box.appendChild(p);
    });
  }

  // The preview: the form's unsaved values posted into the frames, a moment after the last change.
  var popupButton = document.querySelector("[data-preview-popup]");
  var emailButton = document.querySelector("[data-preview-email]");
  var timer = null;
  var popupFrame = document.getElementById("popup-preview");
  var emailNext = false;
  function submitWith(button) {
    // A button's formaction and formtarget send the whole form (and the preview's own choices) to its frame.
    if (button) { form.requestSubmit ? form.requestSubmit(button) : button.click(); }
  }
  var saving = false;
  // Saving navigates the page: a preview submission after it would cancel it, so the preview stops.
  form.addEventListener("submit", function (e) {
    var by = e.submitter;
    if (by && by.hasAttribute("formtarget")) {
      // "Send me a test" answers in the email frame: the email preview still queued behind the
      // popup's (a slow first load) must not come after it and replace its answer.
      if (by.getAttribute("formtarget") === "email-preview" && !by.hasAttribute("data-preview-email")) { emailNext = false; }
      return;
    }
    saving = true;
    emailNext = false;
    if (timer) { clearTimeout(timer); timer = null; }
  });
  function refresh() {
    timer = null;
    if (saving) { return; }
    // One submission at a time: a second one would cancel the first, so the email follows the popup's load.
    emailNext = true;
    submitWith(popupButton);
  }
  if (popupFrame) {
    popupFrame.addEventListener("load", function () {
      if (emailNext && !saving) { emailNext = false; submitWith(emailButton); }
    });
  }
  function schedule() {
    if (saving) { return; }
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(refresh, 350);
  }
  function changed(e) {
    if (e.target.closest("[data-step]")) { summary(e.target.closest("[data-step]")); }
    if (e.target.hasAttribute && e.target.hasAttribute("data-color")) { contrast(); }
    schedule();
  }
  form.addEventListener("input", changed);
  form.addEventListener("change", changed);
  var aside = document.querySelector("[data-preview]");
  if (aside) {
    aside.addEventListener("change", schedule);
    aside.addEventListener("click", function (e) {
      var b = e.target.closest("button[data-width]");
      if (!b) { return; }
      var frame = aside.querySelector("[data-popup-frame]");
      frame.className = "popup-frame " + b.getAttribute("data-width");
      aside.querySelectorAll("button[data-width]").forEach(function (x) { x.setAttribute("aria-pressed", String(x === b)); });
    });
  }
  contrast();
  if (list) { stepsChanged(); }
  refresh();
})();
