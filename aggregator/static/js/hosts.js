/* Host pages: copy share links, follow export progress, and drive the control page
 * without reloads (every button is a plain form that also works without JavaScript). */
(function () {
  "use strict";

  // ---- copy a share link ------------------------------------------------------------------
  document.querySelectorAll(".copy-link").forEach(function (button) {
    button.addEventListener("click", function () {
      var input = button.parentElement.querySelector(".link-url");
      if (!input) { return; }
      input.select();
      var done = function () {
        var label = button.textContent;
        button.textContent = button.dataset.copied || label;
        setTimeout(function () { button.textContent = label; }, 2000);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(input.value).then(done, function () {});
      } else if (document.execCommand && document.execCommand("copy")) {
        done();
      }
    });
  });

  // ---- export progress ----------------------------------------------------------------------
  function followJob(row) {
    var url = row.dataset.statusUrl;
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (res) { return res.ok ? res.json() : null; })
        .then(function (job) {
          if (!job) { return; }
          row.dataset.status = job.status;
          var bar = row.querySelector("progress");
          if (bar) { bar.value = job.progress; bar.textContent = Math.round(job.progress * 100) + "%"; }
          var label = row.querySelector(".job-label");
          if (label) { label.textContent = job.label + (job.error ? ": " + job.error : ""); }
          var link = row.querySelector(".job-download");
          if (link && job.download) { link.href = job.download; link.hidden = false; }
          if (job.status === "queued" || job.status === "running") { setTimeout(poll, 1500); }
        })
        .catch(function () { setTimeout(poll, 5000); });
    }
    poll();
  }
  document.querySelectorAll(".job").forEach(function (row) {
    if (row.dataset.status === "queued" || row.dataset.status === "running") { followJob(row); }
  });

  // ---- control page -----------------------------------------------------------------------
  var control = document.getElementById("control");
  if (!control) { return; }

  function showState(state) {
    var flags = { blank: state.blank, paused: state.paused, silence: !!state.silence_until };
    var any = false;
    Object.keys(flags).forEach(function (name) {
      var el = control.querySelector('[data-flag="' + name + '"]');
      if (el) { el.hidden = !flags[name]; }
      any = any || flags[name];
    });
    var normal = control.querySelector('[data-flag="normal"]');
    if (normal) { normal.hidden = any; }
  }

  function cell(text) {
    var td = document.createElement("td");
    td.textContent = text;
    return td;
  }

  function showScreens(screens) {
    var body = control.querySelector(".screens-table tbody");
    if (!body) { return; }
    body.textContent = "";
    if (!screens.length) {
      var row = document.createElement("tr");
      var td = cell(body.dataset.empty || "");
      td.colSpan = 4;
      row.appendChild(td);
      body.appendChild(row);
      return;
    }
    screens.forEach(function (screen) {
      var row = document.createElement("tr");
      row.className = screen.connected ? "screen-ok" : "screen-lost";
      row.appendChild(cell(screen.label || "—"));
      row.appendChild(cell(screen.layout));
      var showing = cell("");
      if (screen.thumb) {
        var img = document.createElement("img");
        img.src = screen.thumb; img.alt = ""; img.width = 64; img.height = 48;
        showing.appendChild(img);
        showing.appendChild(document.createTextNode(" " + (screen.showing_name || "")));
      } else {
        showing.textContent = screen.showing || "—";
      }
      row.appendChild(showing);
      var seen = new Date(screen.last_seen_at);
      row.appendChild(cell(seen.toLocaleTimeString() + " · " +
        (screen.connected ? body.dataset.connected : body.dataset.lost)));
      body.appendChild(row);
    });
  }

  function refresh() {
    fetch(control.dataset.stateUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (res) { return res.ok ? res.json() : null; })
      .then(function (data) { if (data) { showState(data.control); showScreens(data.screens); } })
      .catch(function () {});
  }

  control.querySelectorAll("form").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var data = new FormData(form);
      var submitter = event.submitter;
      if (submitter && submitter.name) { data.set(submitter.name, submitter.value); }
      // Without fetch's answer, send the plain form (with the pressed button's value).
      var fallback = function () {
        if (submitter && submitter.name) {
          var hidden = document.createElement("input");
          hidden.type = "hidden"; hidden.name = submitter.name; hidden.value = submitter.value;
          form.appendChild(hidden);
        }
        HTMLFormElement.prototype.submit.call(form);
      };
      // form.action would be the input named "action": read the attribute.
      fetch(form.getAttribute("action"), {
        method: "POST",
        body: new URLSearchParams(data),
        credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRF-Token": control.dataset.csrf }
      })
        .then(function (res) { return res.ok ? res.json() : null; })
        .then(function (result) { if (result) { showState(result.control); } else { fallback(); } })
        .catch(fallback);
    });
  });

  setInterval(refresh, 5000);
})();
