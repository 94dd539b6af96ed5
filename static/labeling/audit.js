// Audit keys: n not relevant, a grade digit = actually relevant with that grade, c can't tell.
(function () {
  "use strict";
  document.addEventListener("click", (ev) => {
    const b = ev.target.closest && ev.target.closest("button[data-grade]");
    if (b && b.form) b.form.grade.value = b.dataset.grade; // the grade travels with "actually relevant"
  }, true);
  document.addEventListener("keydown", (ev) => {
    const pane = document.getElementById("audit-pane");
    const t = ev.target;
    if (!pane || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT")) return;
    const button = pane.querySelector('button[data-key="' + CSS.escape(ev.key) + '"]');
    if (button && !pane.classList.contains("htmx-request")) { ev.preventDefault(); button.click(); }
  });
})();
