/* The wall layout: many photos at once, in columns that fill the screen.
 *
 * It reads the same feed as the slideshow (/show/{token}/feed.json, SSE for changes) and obeys
 * the same host controls and keys. Every few seconds one photo enters at the top of the column
 * that changed least recently, growing in slowly and pushing that column down; tiles that slide
 * below the screen's edge are retired. New approvals enter first. A takedown hides the photo at
 * once and the gap closes gently. Tile heights come from the feed's width/height, so the layout
 * never waits for an image to load; only tiles on screen exist, so memory stays flat for hours.
 * The layout is wall_grid.js; the network side (feed, event stream, heartbeat, wake lock)
 * is display_link.js.
 */
(function () {
  "use strict";

  var wall = document.getElementById("wall");
  if (!wall) { return; }

  var MODE = wall.dataset.mode || "live";
  var NEW_DELAY_MS = 800;        // a new approval starts to appear this soon after it arrives
  var QUEUE_STEP_MS = 3000;      // several new approvals: one every this often

  var titleEl = wall.querySelector(".wall__title");
  var qrBox = wall.querySelector(".wall__qr");
  var emptyEl = wall.querySelector(".wall__empty");
  var blankEl = wall.querySelector(".wall__blank");
  var silenceEl = wall.querySelector(".wall__silence");
  var statusEl = wall.querySelector(".wall__status");
  var helpEl = wall.querySelector(".wall__help");

  var feed = null;
  var items = [];
  var byId = new Map();
  var known = null;              // ids seen so far (null until the first feed)
  var queue = [];                // ids to bring in next: new approvals, new pins, jumps
  var cursor = 0;                // rotation position in items
  var timer = null;
  var silenceTimer = null;
  var control = { blank: false, paused: false, silence_until: null, seq: 0, command: null };
  var seqSeen = null;
  var clockOffset = 0;
  var localPause = false;
  var localBlank = false;
  var gone = false;
  var online = true;

  function setText(el, value) { if (el) { el.textContent = value || ""; } }
  function show(el, visible) { if (el) { el.hidden = !visible; } }
  function interval() { return Math.max(3, (feed && feed.settings.interval) || 8) * 1000; }
  function isPaused() { return localPause || control.paused; }
  function silenceLeft() {
    if (!control.silence_until) { return 0; }
    return Math.max(0, Date.parse(control.silence_until) - (Date.now() + clockOffset));
  }
  function status(message) {
    setText(statusEl, message);
    statusEl.classList.toggle("is-visible", !!message);
  }

  // ---- what enters next -----------------------------------------------------------------------

  // New approvals, new pins and jumps first; then the feed's order, round and round.
  function nextCandidate() {
    while (queue.length) {
      var id = queue.shift();
      if (byId.has(id) && !tiles.has(id)) { return byId.get(id); }
    }
    for (var n = 0; n < items.length; n++) {
      cursor = cursor % items.length;
      var item = items[cursor];
      cursor += 1;
      if (!tiles.has(item.id)) { return item; }
    }
    return null;
  }

  var tiles = window.wrWallGrid(wall.querySelector(".wall__grid"), {
    next: nextCandidate,
    changed: function () { updateEmpty(); }
  });

  function updateEmpty() { show(emptyEl, !!feed && tiles.size() === 0); }

  // ---- the rhythm ---------------------------------------------------------------------------

  function schedule(ms) {
    clearTimeout(timer);
    timer = null;
    if (!feed || isPaused() || silenceLeft() > 0 || gone) { return; }
    timer = setTimeout(step, ms);
  }

  function step() {
    timer = null;
    if (!feed || isPaused() || silenceLeft() > 0) { return; }
    var item = nextCandidate();
    if (item) { tiles.bringIn(item); }
    report();
    schedule(queue.length ? Math.min(QUEUE_STEP_MS, interval()) : interval());
  }

  // ---- feed and control ---------------------------------------------------------------------

  function applyBand(doc) {
    setText(titleEl, doc.event && doc.event.title);
    var withQr = !!(doc.qr && doc.settings.qr_every);
    show(qrBox, withQr);
    if (withQr) {
      var qrImg = qrBox.querySelector(".wall__qr-image");
      if (qrImg.getAttribute("src") !== doc.qr.image) { qrImg.src = doc.qr.image; }
      setText(qrBox.querySelector(".wall__qr-text"), doc.qr.text);
      setText(qrBox.querySelector(".wall__qr-url"), doc.qr.url);
    }
  }

  function applyFeed(doc) {
    var first = feed === null;
    var before = byId;
    feed = doc;
    items = doc.items || [];
    byId = new Map();
    items.forEach(function (it) { byId.set(it.id, it); });
    wall.dataset.version = doc.version || "";
    document.body.className = document.body.className.replace(/\btheme-\w+/, "theme-" + doc.settings.theme);
    if (doc.server_time) { clockOffset = Date.parse(doc.server_time) - Date.now(); }
    applyBand(doc);
    var fresh = 0;
    if (known === null) {
      known = new Set(items.map(function (it) { return it.id; }));
    } else {
      items.forEach(function (it) {
        var old = before.get(it.id);
        if (!known.has(it.id)) {
          known.add(it.id);
          if (it.pinned) { queue.unshift(it.id); } else { queue.push(it.id); }
          fresh += 1;
        } else if (it.pinned && old && !old.pinned && !tiles.has(it.id)) {
          queue.unshift(it.id);
          fresh += 1;
        }
      });
    }
    queue = queue.filter(function (id) { return byId.has(id); });
    tiles.ids().forEach(function (id) {
      if (byId.has(id)) { tiles.update(byId.get(id)); } else { tiles.remove(id); }
    });
    if (cursor > items.length) { cursor = 0; }
    if (first) {
      tiles.layout();
      schedule(interval());
      report(true);
      return;
    }
    tiles.fill();
    if (fresh && !isPaused()) { schedule(NEW_DELAY_MS); }
  }

  function applyControl(next) {
    if (!next) { return; }
    var wasPaused = isPaused();
    control = next;
    if (seqSeen === null) { seqSeen = next.seq; }
    show(blankEl, control.blank || localBlank);
    wall.classList.toggle("is-blank", control.blank || localBlank);
    wall.classList.toggle("is-paused", isPaused());
    if (control.command && control.command.seq > seqSeen) {
      var cmd = control.command;
      if (cmd.action === "next") { step(); }
      else if (cmd.action === "jump" && byId.has(cmd.item)) {
        if (!tiles.has(cmd.item)) { queue.unshift(cmd.item); step(); }
      }
    }
    seqSeen = Math.max(seqSeen, next.seq);
    applySilence();
    if (wasPaused && !isPaused()) { schedule(interval()); }
    if (!wasPaused && isPaused()) { clearTimeout(timer); timer = null; }
  }

  function formatTime(ms) {
    var s = Math.ceil(ms / 1000);
    var m = Math.floor(s / 60);
    s = s % 60;
    return m + ":" + (s < 10 ? "0" : "") + s;
  }

  function applySilence() {
    var left = silenceLeft();
    clearInterval(silenceTimer);
    silenceTimer = null;
    if (left <= 0) {
      if (!silenceEl.hidden) { show(silenceEl, false); schedule(interval()); }
      return;
    }
    clearTimeout(timer);
    timer = null;
    setText(silenceEl.querySelector(".wall__silence-text"), feed && feed.strings.silence);
    show(silenceEl, true);
    var timerEl = silenceEl.querySelector(".wall__silence-timer");
    function tick() {
      var rest = silenceLeft();
      setText(timerEl, formatTime(rest));
      if (rest <= 0) {
        clearInterval(silenceTimer);
        silenceTimer = null;
        control.silence_until = null;
        show(silenceEl, false);
        schedule(interval());
      }
    }
    tick();
    silenceTimer = setInterval(tick, 250);
  }

  // ---- the link: feed, event stream, heartbeat (display_link.js) ---------------------------

  var link = window.wrDisplayLink(wall, {
    onFeed: applyFeed,
    onControl: applyControl,
    onGone: linkGone,
    onOnline: function (value) { online = value; },
    showing: function () { return control.blank || localBlank ? "blank" : "wall"; }
  });

  function report(force) { link.report(force); }

  function linkGone() {
    gone = true;
    clearTimeout(timer);
    feed = null; items = []; byId = new Map(); queue = [];
    tiles.clear();
    show(emptyEl, false);
    show(blankEl, true);
  }

  // ---- keys and resizing --------------------------------------------------------------------

  function toggleFullscreen() {
    if (document.fullscreenElement) { document.exitFullscreen().catch(function () {}); }
    else if (document.documentElement.requestFullscreen) {
      document.documentElement.requestFullscreen().catch(function () {});
    }
  }

  function togglePause() {
    localPause = !localPause;
    wall.classList.toggle("is-paused", isPaused());
    if (isPaused()) { clearTimeout(timer); timer = null; status(feed ? feed.strings.paused : ""); }
    else { status(""); schedule(interval()); }
  }

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) { return; }
    var key = e.key;
    if (key === "ArrowRight" || key === " " || key === "PageDown") { e.preventDefault(); step(); }
    else if (key === "f" || key === "F") { toggleFullscreen(); }
    else if (key === "b" || key === "B" || key === ".") { localBlank = !localBlank; applyControl(control); report(true); }
    else if (key === "p" || key === "P") { togglePause(); }
    else if (key === "?") { helpEl.hidden = !helpEl.hidden; }
    else if (key === "Escape") { helpEl.hidden = true; }
  });

  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      if (feed) { tiles.layout(); }
    }, 300);
  });

  // ---- start --------------------------------------------------------------------------------

  window.wrWall = {
    state: function () {
      return {
        mode: MODE,
        items: tiles.ids(),
        queue: queue.slice(),
        columns: tiles.columns(),
        paused: isPaused(),
        blank: control.blank || localBlank,
        online: online,
        version: feed ? feed.version : null
      };
    }
  };

  if (MODE === "offline") {
    if (window.WR_FEED) { applyFeed(window.WR_FEED); }
  }
  link.start();
})();
