// Recovery intake: a preview of each chosen file, only the upload fields the
// chosen document needs, an over-size file stopped before anything is sent,
// errors cleared once the seller fixes them, and a progress bar per file while
// the form is sent. The server checks everything again; without script the
// form posts as a plain form.
(function () {
  "use strict";

  function each(list, fn) { Array.prototype.forEach.call(list, fn); }

  function formatSize(bytes) {
    if (bytes >= 1024 * 1024) { return (bytes / (1024 * 1024)).toFixed(1) + " MB"; }
    return Math.max(1, Math.round(bytes / 1024)) + " KB";
  }

  function fieldOf(input) { return input.closest(".upload"); }

  function chosenFile(field) {
    var found = null;
    each(field.querySelectorAll("input[type=file]"), function (input) {
      if (!found && input.files && input.files[0]) { found = input.files[0]; }
    });
    return found;
  }

  function tooBig(field) {
    var file = chosenFile(field);
    var input = field.querySelector("input[type=file]");
    return Boolean(file && input && file.size > Number(input.getAttribute("data-max-bytes")));
  }

  // A message the server wrote for this field, or the summary above the form,
  // goes away once the seller has changed what it was about.
  function clearServerError(container) {
    each(container.querySelectorAll(".field-error:not(.js-error)"), function (error) {
      each(document.querySelectorAll("[aria-describedby]"), function (input) {
        var ids = input.getAttribute("aria-describedby").split(" ").filter(function (id) { return id !== error.id; });
        input.setAttribute("aria-describedby", ids.join(" "));
      });
      error.remove();
    });
    container.classList.remove("has-error");
    updateSummary(container.closest("form"));
  }

  function updateSummary(form) {
    if (!form) { return; }
    var summary = form.querySelector("#problems");
    if (summary && !form.querySelector(".field-error:not([hidden])")) { summary.remove(); }
  }

  function showFieldError(field, text) {
    var error = field.querySelector(".js-error");
    if (!error) { return; }
    error.textContent = text || "";
    error.hidden = !text;
    field.classList.toggle("has-error", Boolean(text) || Boolean(field.querySelector(".field-error:not(.js-error)")));
  }

  function showPreview(field) {
    var input = field.querySelector("input[type=file][data-preview]");
    var box = input && document.getElementById(input.getAttribute("data-preview"));
    if (!box) { return; }
    var old = box.querySelector("img");
    if (old && old.src) { URL.revokeObjectURL(old.src); }
    box.textContent = "";
    var file = chosenFile(field);
    showFieldError(field, "");
    if (!file) { box.hidden = true; return; }
    var warning = document.createElement("p");
    warning.className = "field-warning";
    warning.hidden = true;
    function warn(text) { warning.textContent = text; warning.hidden = false; }
    if (file.size > Number(input.getAttribute("data-max-bytes"))) {
      showFieldError(field, input.getAttribute("data-too-big"));
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

  function fileChosen(input) {
    var field = fieldOf(input);
    // One file per side: the camera and the file picker replace each other.
    each(field.querySelectorAll("input[type=file]"), function (other) {
      if (other !== input && input.files && input.files.length) { other.value = ""; }
    });
    if (input.files && input.files.length) {
      clearServerError(field);
      var kept = field.querySelector(".kept");
      if (kept) { kept.hidden = true; }
    }
    showPreview(field);
  }

  function showNeededFields(form) {
    var chosen = form.querySelector("input[name=document_type]:checked");
    each(form.querySelectorAll(".upload[data-needed-for]"), function (field) {
      var needed = !chosen || field.getAttribute("data-needed-for").split(" ").indexOf(chosen.value) !== -1;
      field.hidden = !needed;
      if (!needed) {
        each(field.querySelectorAll("input[type=file]"), function (input) { input.value = ""; });
        showPreview(field);
      }
    });
  }

  function setSending(form, sending) {
    var button = form.querySelector("button[type=submit]");
    if (sending) {
      form.setAttribute("data-sent", "1");
      if (button && button.getAttribute("data-sending")) {
        button.setAttribute("data-label", button.textContent);
        button.textContent = button.getAttribute("data-sending");
        button.setAttribute("aria-disabled", "true");
      }
    } else {
      form.removeAttribute("data-sent");
      if (button && button.getAttribute("data-label")) {
        button.textContent = button.getAttribute("data-label");
        button.removeAttribute("aria-disabled");
      }
    }
  }

  function formMessage(form, text) {
    var box = form.querySelector(".js-summary");
    if (!box) {
      box = document.createElement("div");
      box.className = "flash flash-error js-summary";
      box.setAttribute("role", "alert");
      box.tabIndex = -1;
      form.insertBefore(box, form.firstElementChild.nextSibling);
    }
    box.textContent = text;
    box.hidden = !text;
    if (text) { box.focus(); }
  }

  // Each file's share of the body, in the order the browser sends them.
  function progressBars(form) {
    var bars = [];
    each(form.querySelectorAll(".upload"), function (field) {
      var file = field.hidden ? null : chosenFile(field);
      var box = field.querySelector(".upload-progress");
      if (file && box) { bars.push({ size: file.size, box: box }); box.hidden = false; }
    });
    return bars;
  }

  function showProgress(bars, loaded, total) {
    var sizes = bars.reduce(function (sum, bar) { return sum + bar.size; }, 0);
    var fileBytes = Math.max(0, loaded - Math.max(0, total - sizes));
    var start = 0;
    bars.forEach(function (bar) {
      var done = bar.size ? Math.min(1, Math.max(0, (fileBytes - start) / bar.size)) : 1;
      var percent = Math.round(done * 100);
      bar.box.querySelector("progress").value = percent;
      bar.box.querySelector(".percent").textContent = percent + "%";
      start += bar.size;
    });
  }

  function replacePage(html) {
    var next = new DOMParser().parseFromString(html, "text/html");
    var main = next.querySelector("main");
    if (!main) { return false; }
    document.querySelector("main").replaceWith(document.adoptNode(main));
    document.title = next.title;
    init(document);
    return true;
  }

  function send(form) {
    var bars = progressBars(form);
    var request = new XMLHttpRequest();
    form.setAttribute("data-uploading", "1");
    function finished() { form.removeAttribute("data-uploading"); }
    request.open("POST", form.action);
    request.setRequestHeader("X-Upload-Progress", "1");
    request.upload.addEventListener("progress", function (event) {
      if (event.lengthComputable) { showProgress(bars, event.loaded, event.total); }
    });
    request.addEventListener("load", function () {
      finished();
      var type = request.getResponseHeader("Content-Type") || "";
      if (request.status === 200 && type.indexOf("application/json") === 0) {
        window.location.assign(JSON.parse(request.responseText).location);
      } else if (!replacePage(request.responseText)) {
        window.location.reload();
      }
    });
    request.addEventListener("error", function () {
      finished();
      bars.forEach(function (bar) { bar.box.hidden = true; });
      setSending(form, false);
      formMessage(form, form.getAttribute("data-failed"));
    });
    request.send(new FormData(form));
  }

  function initForm(form) {
    each(form.querySelectorAll("input[name=document_type]"), function (radio) {
      radio.addEventListener("change", function () {
        showNeededFields(form);
        clearServerError(radio.closest("fieldset"));
      });
    });
    each(form.querySelectorAll("input[name=consent]"), function (box) {
      box.addEventListener("change", function () { if (box.checked) { clearServerError(box.closest("fieldset")); } });
    });
    showNeededFields(form);
    form.addEventListener("submit", function (event) {
      if (form.getAttribute("data-sent")) { event.preventDefault(); return; }
      var first = null;
      each(form.querySelectorAll(".upload"), function (field) {
        if (!field.hidden && tooBig(field) && !first) { first = field; }
      });
      if (first) {  // never send a file the server would refuse for its size
        event.preventDefault();
        formMessage(form, form.getAttribute("data-too-big"));
        first.querySelector("input[type=file]").focus();
        return;
      }
      formMessage(form, "");
      setSending(form, true);
      if (window.FormData && window.XMLHttpRequest && window.DOMParser) {
        event.preventDefault();
        send(form);
      }
    });
    var problems = form.querySelector("#problems");
    if (problems) { problems.focus(); }
  }

  function init(root) {
    each(root.querySelectorAll("input[type=file][data-preview]"), function (input) {
      input.addEventListener("change", function () { fileChosen(input); });
    });
    each(root.querySelectorAll(".upload"), showPreview);
    each(root.querySelectorAll("form.intake"), initForm);
  }

  // Photos chosen but not sent, or still on their way, are lost if the page
  // goes away (the language switch reloads it, a link or the back button
  // leaves it): the browser asks first. Sending the form is not leaving it.
  window.addEventListener("beforeunload", function (event) {
    var unsent = document.querySelector("form.intake[data-uploading]") !== null;
    each(document.querySelectorAll("form.intake:not([data-sent])"), function (form) {
      each(form.querySelectorAll(".upload"), function (field) { if (chosenFile(field)) { unsent = true; } });
    });
    if (unsent) {
      event.preventDefault();
      event.returnValue = "";
    }
  });

  // Coming back with the browser's back button must not leave the form locked.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) { return; }
    each(document.querySelectorAll("form.intake[data-sent]"), function (form) { setSending(form, false); });
  });

  document.addEventListener("DOMContentLoaded", function () { init(document); });
})();
