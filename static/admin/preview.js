// The settings page's popup preview frame: opens the real popup (the snippet just loaded above this script).
(function () {
  "use strict";
  if (typeof window.cartback === "function") { window.cartback("show"); }
})();
