/* Cyan console: small progressive enhancements. Everything works as plain forms; this adds dialogs,
   copy buttons, dropdowns that close like menus, and the mobile navigation toggle. */
(function () {
  "use strict";

  function openDialog(dialog) {
    if (!dialog) return;
    if (dialog.open) dialog.close();
    dialog.showModal();
    var first = dialog.querySelector("[autofocus], .has-error input, .has-error select, input:not([type=hidden]):not([readonly]), select, textarea");
    if (first) first.focus();
  }

  // A table row with data-row-href opens it when clicked anywhere but on its own controls (the name and the
  // id are real links, so keyboards, middle-click and "open in new tab" work without this).
  document.addEventListener("click", function (event) {
    var row = event.target.closest && event.target.closest("tr[data-row-href]");
    if (!row || event.defaultPrevented || event.button !== 0) return;
    if (event.target.closest("a, button, input, select, textarea, label, summary, details, form, dialog")) return;
    if (window.getSelection && String(window.getSelection()).length) return;  // selecting text, not opening
    if (event.metaKey || event.ctrlKey) { window.open(row.getAttribute("data-row-href")); return; }
    window.location.assign(row.getAttribute("data-row-href"));
  });

  document.addEventListener("click", function (event) {
    var opener = event.target.closest("[data-open-dialog]");
    if (opener) {
      openDialog(document.getElementById(opener.getAttribute("data-open-dialog")));
      return;
    }
    var closer = event.target.closest("[data-close-dialog]");
    if (closer) {
      var dialog = closer.closest("dialog");
      if (dialog) dialog.close();
      return;
    }
    // A click on the backdrop (the dialog element itself, outside its content) closes it.
    if (event.target.tagName === "DIALOG" && event.target.open) {
      var r = event.target.getBoundingClientRect();
      if (event.clientX < r.left || event.clientX > r.right || event.clientY < r.top || event.clientY > r.bottom) {
        event.target.close();
      }
    }
    var copy = event.target.closest("[data-copy]");
    if (copy) {
      var source = document.querySelector(copy.getAttribute("data-copy"));
      if (!source) return;
      var text = source.value || source.textContent;
      var done = function () {
        var label = copy.querySelector("[data-copy-label]");
        if (label) { label.textContent = "Copied"; setTimeout(function () { label.textContent = "Copy"; }, 2000); }
        copy.classList.add("is-copied");
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, function () { source.select(); document.execCommand("copy"); done(); });
      } else {
        source.select(); document.execCommand("copy"); done();
      }
      return;
    }
    var dismiss = event.target.closest("[data-dismiss]");
    if (dismiss) { dismiss.closest("[data-flash]").remove(); return; }
    var navToggle = event.target.closest("[data-toggle-nav]");
    if (navToggle) {
      var open = document.body.classList.toggle("nav-open");
      navToggle.setAttribute("aria-expanded", open ? "true" : "false");
      return;
    }
    // Close open dropdowns when clicking elsewhere.
    document.querySelectorAll("details[data-dropdown][open]").forEach(function (d) {
      if (!d.contains(event.target)) d.removeAttribute("open");
    });
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    document.querySelectorAll("details[data-dropdown][open]").forEach(function (d) {
      d.removeAttribute("open");
      var s = d.querySelector("summary");
      if (s) s.focus();
    });
    document.body.classList.remove("nav-open");
  });

  function init(root) {
    // A form that came back with errors reopens its dialog.
    root.querySelectorAll("dialog[data-open-on-load]").forEach(function (d) {
      d.removeAttribute("data-open-on-load");
      openDialog(d);
    });
    var secret = root.querySelector("[data-secret]");
    if (secret) secret.addEventListener("focus", function () { secret.select(); });
  }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSettle", function (event) {
    var saved = event.target.querySelector && event.target.querySelector(".saved");
    if (saved) setTimeout(function () { saved.classList.add("is-fading"); }, 1500);
  });
})();
