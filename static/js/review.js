// Reviewer pages: keyboard moves through the queue; the document viewer zooms and rotates.
// Loaded as a file (the CSP allows no inline script); styles are set through the CSSOM only.
(function () {
  "use strict";

  function typing(event) {
    var el = event.target;
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }

  // --- queue: j / k move, Enter opens, n claims the next case -----------------
  var rows = Array.prototype.slice.call(document.querySelectorAll(".queue-row"));
  var current = -1;

  function select(index) {
    if (!rows.length) { return; }
    current = Math.max(0, Math.min(rows.length - 1, index));
    rows.forEach(function (row, i) { row.classList.toggle("is-current", i === current); });
    var link = rows[current].querySelector(".case-link");
    if (link) { link.focus(); }
  }

  rows.forEach(function (row, i) {
    row.addEventListener("focusin", function () { current = i; select(i); });
  });

  // --- a checklist sent back incomplete: a box once ticked is no longer invalid -----
  Array.prototype.forEach.call(document.querySelectorAll(".checklist input[aria-invalid=true]"), function (box) {
    box.addEventListener("change", function () {
      if (box.checked) {
        box.removeAttribute("aria-invalid");
        box.removeAttribute("aria-describedby");
      } else {
        box.setAttribute("aria-invalid", "true");
        box.setAttribute("aria-describedby", "checklist-error");
      }
    });
  });

  // --- document viewer ----------------------------------------------------------
  function Viewer(root) {
    this.frame = root.querySelector(".viewer-frame");
    this.image = root.querySelector("[data-viewer-image]");
    this.zoom = 1;
    this.angle = 0;
    var self = this;
    root.querySelectorAll("[data-action]").forEach(function (button) {
      button.addEventListener("click", function () { self.act(button.getAttribute("data-action")); });
    });
  }
  Viewer.prototype.act = function (action) {
    if (action === "zoom-in") { this.zoom = Math.min(6, this.zoom * 1.25); }
    if (action === "zoom-out") { this.zoom = Math.max(0.25, this.zoom / 1.25); }
    if (action === "rotate") { this.angle = (this.angle + 90) % 360; }
    if (action === "reset") { this.zoom = 1; this.angle = 0; }
    // Zoom changes the layout width (so the frame scrolls to every edge);
    // a quarter turn is given margins that make its box match what is seen.
    var image = this.image;
    image.style.width = (this.zoom * 100) + "%";
    image.style.transform = "rotate(" + this.angle + "deg)";
    var quarter = this.angle % 180 !== 0;
    var dy = quarter ? (image.offsetWidth - image.offsetHeight) / 2 : 0;
    image.style.margin = dy + "px " + (-dy) + "px";
  };

  var viewers = Array.prototype.slice.call(document.querySelectorAll("[data-viewer]")).map(function (root) {
    return new Viewer(root);
  });
  var activeViewer = viewers[0] || null;
  viewers.forEach(function (viewer) {
    viewer.frame.addEventListener("focus", function () { activeViewer = viewer; });
    viewer.frame.addEventListener("click", function () { activeViewer = viewer; viewer.frame.focus(); });
  });

  var viewerKeys = { "+": "zoom-in", "=": "zoom-in", "-": "zoom-out", "r": "rotate", "0": "reset" };

  document.addEventListener("keydown", function (event) {
    if (typing(event) || event.altKey || event.ctrlKey || event.metaKey) { return; }
    if (rows.length) {
      if (event.key === "j") { select(current + 1); event.preventDefault(); return; }
      if (event.key === "k") { select(current - 1); event.preventDefault(); return; }
      if (event.key === "Enter" && current >= 0 && document.activeElement === document.body) {
        window.location.assign(rows[current].getAttribute("data-href"));
        return;
      }
    }
    if (event.key === "n") {
      var claim = document.getElementById("claim-next");
      if (claim) { claim.click(); event.preventDefault(); }
      return;
    }
    if (activeViewer && viewerKeys[event.key]) {
      activeViewer.act(viewerKeys[event.key]);
      event.preventDefault();
    }
  });
}());
