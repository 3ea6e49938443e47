// Recovery codes: print them (the print stylesheet keeps only the codes).
(function () {
  "use strict";
  var button = document.getElementById("print-codes");
  if (!button || typeof window.print !== "function") {
    return;
  }
  button.hidden = false;
  button.addEventListener("click", function () { window.print(); });
})();

// Recovery codes: copy them to the clipboard (the download link works without script).
(function () {
  "use strict";
  var button = document.getElementById("copy-codes");
  var list = document.getElementById("recovery-codes");
  if (!button || !list || !navigator.clipboard) {
    return;
  }
  button.hidden = false;
  button.addEventListener("click", function () {
    var codes = Array.prototype.map.call(list.querySelectorAll("li"), function (item) {
      return item.textContent.trim();
    });
    navigator.clipboard.writeText(codes.join("\n")).then(function () {
      button.textContent = button.getAttribute("data-done");
    });
  });
})();

// Authenticator set-up: copy the setup key, for pasting into an app on this phone.
(function () {
  "use strict";
  var button = document.getElementById("copy-key");
  var status = document.getElementById("copy-key-done");
  if (!button || !navigator.clipboard) {
    return;
  }
  button.hidden = false;
  button.addEventListener("click", function () {
    navigator.clipboard.writeText(button.getAttribute("data-key")).then(function () {
      if (status) { status.textContent = status.getAttribute("data-done"); }
    });
  });
})();
