/* Cyan console — the live event log. One EventSource on the page's stream (the same streams the API serves,
   signed in by the session); the browser reconnects by itself and sends Last-Event-ID, so the server resends
   what was missed. Pause keeps receiving but holds rows back until Resume. Rows are built with textContent:
   event names and data come from devices. */
(function () {
  "use strict";

  var table = document.querySelector("[data-events-log]");
  if (!table) return;
  var body = table.querySelector("tbody");
  var statusEl = document.querySelector("[data-events-status]");
  var empty = document.querySelector("[data-events-empty]");
  var pauseBtn = document.querySelector("[data-events-pause]");
  var MAX_ROWS = 500;
  var paused = false;
  var held = [];
  var count = 0;

  function status(text) { if (statusEl) statusEl.textContent = text; }

  function cell(text, className) {
    var td = document.createElement("td");
    if (className) td.className = className;
    td.textContent = text;
    return td;
  }

  function row(name, payload) {
    var tr = document.createElement("tr");
    tr.setAttribute("data-event", name);
    tr.appendChild(cell(name, "mono"));
    var data = payload.data === null || payload.data === undefined ? "" : String(payload.data);
    tr.appendChild(cell(data, "event-data"));
    tr.appendChild(cell(payload.coreid || "", "mono small"));
    var when = payload.published_at ? new Date(payload.published_at) : null;
    tr.appendChild(cell(when && !isNaN(when) ? when.toLocaleTimeString() : "", "muted small"));
    return tr;
  }

  function show(rows) {
    rows.forEach(function (tr) { body.insertBefore(tr, body.firstChild); });
    while (body.children.length > MAX_ROWS) body.removeChild(body.lastChild);
    if (empty) empty.hidden = body.children.length > 0;
  }

  function url() {
    var params = new URLSearchParams();
    if (table.dataset.prefix) params.set("prefix", table.dataset.prefix);
    if (table.dataset.device) params.set("device", table.dataset.device);
    var query = params.toString();
    return table.dataset.streamUrl + (query ? "?" + query : "");
  }

  var source = new EventSource(url());
  source.onopen = function () { status(paused ? "Paused — receiving" : "Live"); };
  source.onerror = function () { status("Reconnecting…"); };
  source.onmessage = handle;  // the console's streams put each event's name inside its data

  function handle(event) {
    var payload;
    try { payload = JSON.parse(event.data); } catch (e) { return; }
    count += 1;
    var tr = row(payload.name || "", payload);
    if (paused) { held.push(tr); status("Paused — " + held.length + " waiting"); }
    else { show([tr]); status("Live — " + count + " received"); }
  }

  if (pauseBtn) {
    pauseBtn.addEventListener("click", function () {
      paused = !paused;
      pauseBtn.textContent = paused ? "Resume" : "Pause";
      pauseBtn.setAttribute("aria-pressed", paused ? "true" : "false");
      if (!paused) { show(held); held = []; status("Live — " + count + " received"); }
      else { status("Paused — receiving"); }
    });
  }
  var clear = document.querySelector("[data-events-clear]");
  if (clear) clear.addEventListener("click", function () { body.textContent = ""; held = []; if (empty) empty.hidden = false; });
  window.addEventListener("beforeunload", function () { source.close(); });
})();
