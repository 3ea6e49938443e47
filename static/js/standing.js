// The case page keeps "Where your case stands" current: it asks the server
// for the same texts the page was drawn with and puts them in place. It asks
// only while the page is visible, stops when the server no longer answers for
// this seller, and reloads the page when the case leaves the queue (decided,
// sent back for documents, closed), since the rest of the page then changes.
(function () {
  "use strict";

  var panel = document.getElementById("standing");
  if (!panel || !window.fetch) { return; }
  var url = panel.getAttribute("data-url");
  var every = Math.max(1, Number(panel.getAttribute("data-every")) || 20) * 1000;
  var fields = ["place", "reviewer", "estimate", "basis", "promise"];
  var timer = null;
  var stopped = false;
  var asking = false;

  function show(name, text) {
    var element = panel.querySelector("[data-field='" + name + "']");
    if (!element) { return; }
    if (element.textContent !== (text || "")) { element.textContent = text || ""; }
    element.hidden = !text;
  }

  function apply(data) {
    if (data.reload) { window.location.reload(); return; }
    panel.setAttribute("data-state", data.state);
    var badge = document.getElementById("case-status");
    if (badge && data.status_label && badge.textContent !== data.status_label) { badge.textContent = data.status_label; }
    fields.forEach(function (name) { show(name, data[name]); });
  }

  function stop() {
    stopped = true;
    show("stopped", panel.getAttribute("data-stopped"));
  }

  function schedule() {
    if (!stopped && document.visibilityState !== "hidden") {
      timer = window.setTimeout(ask, every);
    }
  }

  function ask() {
    timer = null;
    asking = true;
    fetch(url, { credentials: "same-origin", cache: "no-store", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (response.status === 404) { stop(); return null; }
        return response.ok ? response.json() : null;
      })
      .then(function (data) { if (data) { apply(data); } })
      .catch(function () { /* offline for a moment: ask again later */ })
      .then(function () { asking = false; schedule(); });
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") {
      if (timer !== null) { window.clearTimeout(timer); timer = null; }
    } else if (!stopped && timer === null && !asking) {
      ask();
    }
  });
  schedule();
}());
