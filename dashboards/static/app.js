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
    document.body.addEventListener("htmx:afterRequest", function (event) {
      var xhr = event.detail.xhr;
      if (event.detail.elt === rows && xhr && xhr.status === 200) {
        headerCounts(xhr.getResponseHeader("X-Alert-Total"), xhr.getResponseHeader("X-Notice-Count"));
        window.socliteQueueRefreshed();
      }
    });
  }
  if (rows && !window.htmx) {
    var seconds = parseInt(rows.getAttribute("data-refresh-seconds") || "15", 10);
    window.setInterval(function () {
      if (document.querySelector(".sel:checked")) { return; }  // never wipe a selection in progress
      fetch(rows.getAttribute("data-refresh-url"), { credentials: "same-origin" })
        .then(function (r) {
          if (!r.ok) { return null; }
          headerCounts(r.headers.get("X-Alert-Total"), r.headers.get("X-Notice-Count"));
          return r.text();
        })
        .then(function (html) { if (html !== null) { rows.innerHTML = html; window.socliteQueueRefreshed(); } });
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

// Discover: drag over the histogram's bars to zoom into that time (from = first bar's start, to = last
// bar's end, local wall-clock time). The zoom form under the chart does the same from the keyboard.
document.addEventListener("DOMContentLoaded", () => {
  const brush = document.querySelector("[data-brush]");
  const svg = brush && brush.querySelector("svg");
  if (!svg) { return; }
  const bounds = JSON.parse(brush.getAttribute("data-bounds") || "[]");
  const slots = Array.from(svg.querySelectorAll("rect.slot"));
  if (!slots.length || slots.length !== bounds.length) { return; }
  const ns = "http://www.w3.org/2000/svg";
  const mark = document.createElementNS(ns, "rect");
  mark.setAttribute("class", "brush-sel");
  mark.setAttribute("y", slots[0].getAttribute("y"));
  mark.setAttribute("height", slots[0].getAttribute("height"));
  let start = null;
  const indexAt = (event) => {
    const pt = svg.createSVGPoint();
    pt.x = event.clientX; pt.y = event.clientY;
    const x = pt.matrixTransform(svg.getScreenCTM().inverse()).x;
    let best = 0;
    slots.forEach((slot, i) => { if (x >= parseFloat(slot.getAttribute("x"))) { best = i; } });
    return best;
  };
  const draw = (a, b) => {
    const lo = slots[Math.min(a, b)], hi = slots[Math.max(a, b)];
    const x = parseFloat(lo.getAttribute("x"));
    mark.setAttribute("x", String(x));
    mark.setAttribute("width", String(parseFloat(hi.getAttribute("x")) + parseFloat(hi.getAttribute("width")) - x));
    if (!mark.parentNode) { svg.appendChild(mark); }
  };
  svg.addEventListener("pointerdown", (event) => {
    start = indexAt(event);
    svg.setPointerCapture(event.pointerId);
    draw(start, start);
    event.preventDefault();
  });
  svg.addEventListener("pointermove", (event) => { if (start !== null) { draw(start, indexAt(event)); } });
  svg.addEventListener("pointerup", (event) => {
    if (start === null) { return; }
    const end = indexAt(event);
    const a = Math.min(start, end), b = Math.max(start, end);
    start = null;
    const params = new URLSearchParams(window.location.search);
    params.set("from", bounds[a][1]);
    params.set("to", bounds[b][2]);
    params.delete("cursor");
    window.location.search = params.toString();
  });
});

// The queue's header counts after a live refresh: the total (in the page's language and number format)
// and the notification badge, from the refresh response's headers.
function headerCounts(total, noticeCount) {
  var el = document.getElementById("alert-total");
  if (el && total !== null && el.getAttribute("data-pattern")) {
    var lang = document.documentElement.lang === "vi" ? "vi-VN" : "en-US";
    var text = new Intl.NumberFormat(lang).format(parseInt(total, 10));
    el.textContent = el.getAttribute("data-pattern").replace("{n}", text);
  }
  var badge = document.querySelector("#notification-badge .count");
  if (badge && noticeCount !== null) {
    badge.textContent = noticeCount;
    badge.parentElement.classList.toggle("has-notices", parseInt(noticeCount, 10) > 0);
  }
}

// Keyboard use of the queue: j/k move, Enter/o open, x select, a assign to me, s set status,
// c comment, ? shows the keys. Keys typed into a field are the field's.
window.socliteQueueRefreshed = function () {};
document.addEventListener("DOMContentLoaded", function () {
  var tbody = document.getElementById("alert-rows");
  var help = document.getElementById("kb-help");
  if (!tbody) { return; }  // not the queue
  var current = -1;
  var currentId = null;
  function rows() { return Array.prototype.slice.call(tbody.querySelectorAll("tr[data-id]")); }
  function mark(index) {
    var all = rows();
    if (!all.length) { current = -1; currentId = null; return; }
    current = Math.max(0, Math.min(index, all.length - 1));
    all.forEach(function (row, i) {
      row.classList.toggle("kb-current", i === current);
      if (i === current) { row.setAttribute("aria-current", "true"); } else { row.removeAttribute("aria-current"); }
    });
    currentId = all[current].getAttribute("data-id");
    all[current].scrollIntoView({ block: "nearest" });
  }
  // a refresh replaces the rows: keep the same alert current when it is still there
  window.socliteQueueRefreshed = function () {
    if (currentId === null) { return; }
    var index = rows().findIndex(function (row) { return row.getAttribute("data-id") === currentId; });
    mark(index >= 0 ? index : current);
  };
  function row() { return rows()[current] || null; }
  function ensureSelected() {
    if (!document.querySelector(".sel:checked") && row()) {
      var box = row().querySelector("input.sel");
      if (box) { box.checked = true; }
    }
  }
  var helpOpen = document.getElementById("kb-help-open");
  if (helpOpen && help) { helpOpen.addEventListener("click", function () { help.showModal(); }); }
  document.addEventListener("keydown", function (event) {
    var t = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    // after s: a status picked in the bulk select (arrow keys), Enter applies it (a select has no implicit
    // submission of its own)
    if (t instanceof HTMLSelectElement && t.id === "bulk-status" && event.key === "Enter" && t.value) {
      var apply = document.getElementById("bulk-apply");
      if (apply && t.form) { event.preventDefault(); t.form.requestSubmit(apply); }
      return;
    }
    if (t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement
        || (t instanceof HTMLElement && t.isContentEditable)) { return; }
    if (help && help.open && event.key !== "?") { return; }
    var bulk = document.getElementById("bulk");
    switch (event.key) {
      case "j": mark(current + 1); break;
      case "k": mark(current < 0 ? 0 : current - 1); break;
      case "Enter": case "o":
        if (row()) { window.location.href = row().querySelector("a.alert-link").getAttribute("href"); }
        break;
      case "x":
        if (row() && row().querySelector("input.sel")) {
          var box = row().querySelector("input.sel");
          box.checked = !box.checked;
        }
        break;
      case "a":
        if (!bulk || !document.getElementById("bulk-apply") || !row()) { return; }
        ensureSelected();
        bulk.querySelector("input[name=assign_me]").checked = true;
        bulk.querySelector("#bulk-status").value = "";
        bulk.requestSubmit(document.getElementById("bulk-apply"));
        break;
      case "s":
        if (!bulk || !document.getElementById("bulk-status") || !row()) { return; }
        ensureSelected();
        document.getElementById("bulk-status").focus();
        break;
      case "c":
        if (row() && document.getElementById("bulk-apply")) {
          window.location.href = row().querySelector("a.alert-link").getAttribute("href") + "#comment";
        }
        break;
      case "?":
        if (help) { if (help.open) { help.close(); } else { help.showModal(); } }
        break;
      default: return;
    }
    event.preventDefault();
  });
});
// the alert page opened by "c" in the queue: the comment box takes the focus
document.addEventListener("DOMContentLoaded", function () {
  var box = window.location.hash === "#comment" ? document.getElementById("comment") : null;
  if (box) { box.focus(); }
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
