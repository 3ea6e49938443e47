// Recovery intake: show a preview of each chosen file before it is sent, and
// only the upload fields the chosen document needs. The server checks
// everything again; this only helps the seller see what they picked.
(function () {
  "use strict";

  function formatSize(bytes) {
    if (bytes >= 1024 * 1024) { return (bytes / (1024 * 1024)).toFixed(1) + " MB"; }
    return Math.max(1, Math.round(bytes / 1024)) + " KB";
  }

  function showPreview(input) {
    var box = document.getElementById(input.getAttribute("data-preview"));
    if (!box) { return; }
    var old = box.querySelector("img");
    if (old && old.src) { URL.revokeObjectURL(old.src); }
    box.textContent = "";
    var file = input.files && input.files[0];
    if (!file) { box.hidden = true; return; }
    var warning = document.createElement("p");
    warning.className = "field-warning";
    warning.hidden = true;
    function warn(text) { warning.textContent = text; warning.hidden = false; }
    if (file.size > Number(input.getAttribute("data-max-bytes"))) {
      warn(input.getAttribute("data-too-big"));
    } else if (!/^(image\/(jpeg|png)|application\/pdf)$/.test(file.type) && !/\.(jpe?g|png|pdf)$/i.test(file.name)) {
      warn(input.getAttribute("data-wrong-type"));
    }
    if (/^image\/(jpeg|png)$/.test(file.type)) {
      var img = document.createElement("img");
      img.alt = "";
      img.addEventListener("load", function () {
        var longSide = Math.max(img.naturalWidth, img.naturalHeight);
        var shortSide = Math.min(img.naturalWidth, img.naturalHeight);
        if (longSide < Number(input.getAttribute("data-min-long")) ||
            shortSide < Number(input.getAttribute("data-min-short"))) {
          warn(input.getAttribute("data-too-small"));
        }
      });
      img.src = URL.createObjectURL(file);
      box.appendChild(img);
    } else {
      var badge = document.createElement("span");
      badge.className = "preview-kind";
      badge.textContent = file.type === "application/pdf" ? "PDF" : "?";
      box.appendChild(badge);
    }
    var caption = document.createElement("p");
    caption.className = "preview-name";
    caption.textContent = file.name + " · " + formatSize(file.size);
    box.appendChild(caption);
    box.appendChild(warning);
    box.hidden = false;
  }

  function showNeededFields(form) {
    var chosen = form.querySelector("input[name=document_type]:checked");
    var fields = form.querySelectorAll(".upload[data-needed-for]");
    Array.prototype.forEach.call(fields, function (field) {
      var needed = !chosen || field.getAttribute("data-needed-for").split(" ").indexOf(chosen.value) !== -1;
      field.hidden = !needed;
      var input = field.querySelector("input[type=file]");
      if (!needed && input && input.value) {
        input.value = "";
        showPreview(input);
      }
    });
  }

  // Coming back with the browser's back button must not leave the form locked.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) { return; }
    Array.prototype.forEach.call(document.querySelectorAll("form.intake[data-sent]"), function (form) {
      form.removeAttribute("data-sent");
      var button = form.querySelector("button[type=submit]");
      if (button && button.getAttribute("data-label")) {
        button.textContent = button.getAttribute("data-label");
        button.removeAttribute("aria-disabled");
      }
    });
  });

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("input[type=file][data-preview]"), function (input) {
      input.addEventListener("change", function () { showPreview(input); });
      showPreview(input);
    });
    Array.prototype.forEach.call(document.querySelectorAll("form.intake"), function (form) {
      Array.prototype.forEach.call(form.querySelectorAll("input[name=document_type]"), function (radio) {
        radio.addEventListener("change", function () { showNeededFields(form); });
      });
      showNeededFields(form);
      // Uploads take a while on a phone: one tap sends once.
      form.addEventListener("submit", function (event) {
        var button = form.querySelector("button[type=submit]");
        if (form.getAttribute("data-sent")) { event.preventDefault(); return; }
        form.setAttribute("data-sent", "1");
        if (button && button.getAttribute("data-sending")) {
          button.setAttribute("data-label", button.textContent);
          button.textContent = button.getAttribute("data-sending");
          button.setAttribute("aria-disabled", "true");
        }
      });
      var problems = form.querySelector("#problems");
      if (problems) { problems.focus(); }
    });
  });
})();
