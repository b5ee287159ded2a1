// soclite UI: small progressive enhancements; every page works without this file.
document.addEventListener("DOMContentLoaded", function () {
  var all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", function () {
      document.querySelectorAll("input.sel").forEach(function (box) { box.checked = all.checked; });
    });
  }
  // Live refresh of the alert queue: htmx does it when installed; otherwise this small poller.
  var rows = document.getElementById("alert-rows");
  if (rows && window.htmx) {
    // Never wipe a selection in progress (a trigger filter would need eval, which the CSP forbids).
    document.body.addEventListener("htmx:beforeRequest", function (event) {
      if (event.detail.elt === rows && document.querySelector(".sel:checked")) { event.preventDefault(); }
    });
  }
  if (rows && !window.htmx) {
    var seconds = parseInt(rows.getAttribute("data-refresh-seconds") || "15", 10);
    window.setInterval(function () {
      if (document.querySelector(".sel:checked")) { return; }  // never wipe a selection in progress
      fetch(rows.getAttribute("data-refresh-url"), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) { if (html !== null) { rows.innerHTML = html; } });
    }, seconds * 1000);
  }
  // "Back" links: the CSP forbids javascript: URLs; without this script they go to the overview.
  document.querySelectorAll("a[data-back]").forEach(function (link) {
    link.addEventListener("click", function (event) {
      if (window.history.length > 1) { event.preventDefault(); window.history.back(); }
    });
  });
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });
});

// A select marked data-autosubmit sends its form when it changes (no inline handler: the CSP forbids them).
document.addEventListener("change", (event) => {
  const target = event.target;
  if (target instanceof HTMLSelectElement && target.hasAttribute("data-autosubmit") && target.form) {
    target.form.submit();
  }
});

// Incident deadlines: keep each countdown ticking (the server rendered it; the words come from data-* so the
// catalog's language is kept: data-left / data-overdue hold "%s" for the time).
function tickCountdowns() {
  document.querySelectorAll(".countdown[data-due]").forEach(function (el) {
    var due = Date.parse(el.getAttribute("data-due"));
    if (isNaN(due)) { return; }
    var seconds = Math.round((due - Date.now()) / 1000);
    var minutes = Math.floor(Math.abs(seconds) / 60);
    var time = Math.floor(minutes / 60) + " " + (el.getAttribute("data-h") || "h") + " " +
      String(minutes % 60).padStart(2, "0") + " " + (el.getAttribute("data-m") || "min");
    var pattern = el.getAttribute(seconds >= 0 ? "data-left" : "data-overdue");
    if (pattern) { el.textContent = pattern.replace("%s", time); }
  });
}
document.addEventListener("DOMContentLoaded", function () {
  if (document.querySelector(".countdown[data-due]")) { tickCountdowns(); window.setInterval(tickCountdowns, 30000); }
});
