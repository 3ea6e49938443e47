// A form sent back with errors: the first block marked with an error (its
// field and the message under it) comes into view, and its field takes the
// focus: the first one marked invalid, when the block says which. On a phone
// the message may be far below where the page opens (under a QR code, or the
// documents of a case). A page that moved the focus itself (the upload form's
// summary) keeps it.
(function () {
  "use strict";
  function focusFirst() {
    if (document.activeElement && document.activeElement !== document.body) {
      return;
    }
    var marked = document.querySelector("main .has-error");
    if (!marked) {
      return;
    }
    // The field said to be wrong, when the block marks which (a checklist's unticked box); else its first.
    var target = marked.querySelector("[aria-invalid=true]") ||
      marked.querySelector("input:not([type=hidden]), select, textarea") || marked;
    if (target === marked && !marked.hasAttribute("tabindex")) {
      marked.setAttribute("tabindex", "-1");
    }
    marked.scrollIntoView({block: "center"});
    target.focus({preventScroll: true});
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", focusFirst);
  } else {
    focusFirst();
  }
})();
