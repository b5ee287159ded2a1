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
