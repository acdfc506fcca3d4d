// motcua back office: small progressive enhancements; every page works without them.
(function () {
  "use strict";
  // "Select all" checkboxes for bulk claim and batch approval.
  document.querySelectorAll("input[data-select-all]").forEach(function (box) {
    box.addEventListener("change", function () {
      document.querySelectorAll("input[name='" + box.dataset.selectAll + "']").forEach(function (item) {
        item.checked = box.checked;
      });
    });
  });
  // Keyboard: "/" focuses the inbox search; Alt+1..9 press the n-th decision button (also accesskey).
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    var typing = target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT");
    if (event.key === "/" && !typing) {
      var search = document.querySelector("input[type=search]");
      if (search) { event.preventDefault(); search.focus(); }
    }
  });
  // Confirm before an irreversible decision.
  document.querySelectorAll("button[data-confirm]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm(button.dataset.confirm)) { event.preventDefault(); }
    });
  });
  // Printable pages (the submission receipt): the browser prints or saves them as PDF.
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); });
  });
})();
