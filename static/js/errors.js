// A form sent back with errors: the first field that needs a change gets the
// focus, which also scrolls it into view. On a phone the message may be far
// below where the page opens (under a QR code, or the documents of a case).
// A page that moved the focus itself (the upload form's summary) keeps it.
(function () {
  "use strict";
  function first() {
    var marked = document.querySelector("main .has-error");
    if (!marked) {
      return null;
    }
    return marked.querySelector("input:not([type=hidden]), select, textarea") || marked;
  }
  function focusFirst() {
    if (document.activeElement && document.activeElement !== document.body) {
      return;
    }
    var target = first();
    if (!target) {
      return;
    }
    if (!target.matches("input, select, textarea") && !target.hasAttribute("tabindex")) {
      target.setAttribute("tabindex", "-1");
    }
    // The field and its message below it come into view together, then the
    // field takes the focus where it is.
    document.querySelector("main .has-error").scrollIntoView({block: "center"});
    target.focus({preventScroll: true});
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", focusFirst);
  } else {
    focusFirst();
  }
})();
