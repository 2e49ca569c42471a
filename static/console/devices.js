/* Cyan console — device pages: row selection for bulk actions, and small conveniences. The pages work as
   plain forms without it (every row checkbox posts through #bulk-form). Events are delegated to the
   document, so the list keeps working after htmx swaps #device-results. */
(function () {
  "use strict";

  function rowChecks() { return Array.prototype.slice.call(document.querySelectorAll("[data-row-check]")); }

  function refresh() {
    var checks = rowChecks();
    var selected = checks.filter(function (c) { return c.checked; });
    var n = selected.length;
    var all = document.querySelector("[data-select-all]");
    if (all) {
      all.checked = n > 0 && n === checks.length;
      all.indeterminate = n > 0 && n < checks.length;
    }
    checks.forEach(function (c) { var tr = c.closest("tr"); if (tr) tr.classList.toggle("is-selected", c.checked); });
    var bar = document.querySelector("[data-bulkbar]");
    if (bar) bar.classList.toggle("has-selection", n > 0);
    var label = document.querySelector("[data-selected-label]");
    if (label) label.textContent = n ? n + " selected" : "Select devices to act on several at once";
    document.querySelectorAll("[data-needs-selection]").forEach(function (b) { b.disabled = n === 0; });
    var text = n === 1 ? "1 selected device" : n + " selected devices";
    document.querySelectorAll("[data-selected-text]").forEach(function (el) { el.textContent = text; });
    document.querySelectorAll("[data-selected-count]").forEach(function (el) { el.textContent = String(n); });
    document.querySelectorAll("[data-selected-plural]").forEach(function (el) { el.textContent = n === 1 ? "" : "s"; });
  }

  document.addEventListener("change", function (event) {
    var t = event.target;
    if (t.matches("[data-select-all]")) {
      rowChecks().forEach(function (c) { c.checked = t.checked; });
      refresh();
    } else if (t.matches("[data-row-check]")) {
      refresh();
    } else if (t.matches("[data-autosubmit]")) {
      if (t.form) t.form.requestSubmit ? t.form.requestSubmit() : t.form.submit();
    }
  });

  // Shift-click selects the range from the last ticked row.
  var last = null;
  document.addEventListener("click", function (event) {
    var t = event.target;
    if (!t.matches || !t.matches("[data-row-check]")) return;
    if (event.shiftKey && last && last !== t) {
      var checks = rowChecks();
      var a = checks.indexOf(last), b = checks.indexOf(t);
      if (a >= 0 && b >= 0) {
        checks.slice(Math.min(a, b), Math.max(a, b) + 1).forEach(function (c) { c.checked = t.checked; });
        refresh();
      }
    }
    last = t;
  });

  document.addEventListener("DOMContentLoaded", refresh);
  document.addEventListener("htmx:afterSettle", refresh);
  // Leaving the list with rows ticked, then coming back, restores the ticks: show them.
  window.addEventListener("pageshow", refresh);
})();
