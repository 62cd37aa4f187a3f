/* The wall layout: many photos at once, in columns that fill the screen.
 *
 * It reads the same feed as the slideshow (/show/{token}/feed.json, SSE for changes) and obeys
 * the same host controls and keys. Every few seconds one photo enters at the top of the column
 * that changed least recently, growing in slowly and pushing that column down; tiles that slide
 * below the screen's edge are retired. New approvals enter first. A takedown hides the photo at
 * once and the gap closes gently. Tile heights come from the feed's width/height, so the layout
 * never waits for an image to load; only tiles on screen exist, so memory stays flat for hours.
 */
(function () {
  "use strict";

  var wall = document.getElementById("wall");
  if (!wall) { return; }

  var MODE = wall.dataset.mode || "live";
  var POLL_MS = 5000;
  var SSE_STALE_MS = 45000;
  var SSE_RETRY_MS = 60000;
  var HEARTBEAT_MS = 30000;
  var CURSOR_IDLE_MS = 2500;
  var NEW_DELAY_MS = 800;        // a new approval starts to appear this soon after it arrives
  var QUEUE_STEP_MS = 3000;      // several new approvals: one every this often
  var GROW_MS = 1300;            // matches --grow in wall.css (plus a little)
  var COLUMN_PX = 380;           // aimed-at column width
  var THUMB_PX = 480;            // the thumbnail derivative's box

  var grid = wall.querySelector(".wall__grid");
  var titleEl = wall.querySelector(".wall__title");
  var qrBox = wall.querySelector(".wall__qr");
  var emptyEl = wall.querySelector(".wall__empty");
  var blankEl = wall.querySelector(".wall__blank");
  var silenceEl = wall.querySelector(".wall__silence");
  var statusEl = wall.querySelector(".wall__status");
  var helpEl = wall.querySelector(".wall__help");
  var reduceMotion = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)");

  var feed = null;
  var items = [];
  var byId = new Map();
  var known = null;              // ids seen so far (null until the first feed)
  var queue = [];                // ids to bring in next: new approvals, new pins, jumps
  var cursor = 0;                // rotation position in items
  var columns = [];
  var tiles = new Map();         // id -> tile element on the wall
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
  function still() { return !!(reduceMotion && reduceMotion.matches); }
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

  // ---- geometry -----------------------------------------------------------------------------

  function gap() { return parseFloat(window.getComputedStyle(grid).columnGap) || 0; }
  function columnWidth() { return columns.length ? columns[0].clientWidth : grid.clientWidth; }
  function targetHeight(tile) {
    var w = Number(tile.dataset.w) || 1;
    var h = Number(tile.dataset.h) || 1;
    // A very tall photo is cropped rather than allowed to fill a whole column.
    return Math.max(40, Math.round(Math.min(columnWidth() * h / w, grid.clientHeight * 0.75)));
  }
  function sizeTile(tile) {
    var target = targetHeight(tile);
    tile.dataset.target = String(target);
    tile.style.height = target + "px";
  }
  function liveTiles(col) {
    return Array.prototype.filter.call(col.children, function (t) {
      return !t.classList.contains("is-leaving");
    });
  }
  function columnHeight(col) {
    var list = liveTiles(col);
    var sum = 0;
    list.forEach(function (t) { sum += Number(t.dataset.target) || 0; });
    return sum + gap() * Math.max(0, list.length - 1);
  }
  function shortest() {
    var best = columns[0];
    columns.forEach(function (col) { if (columnHeight(col) < columnHeight(best)) { best = col; } });
    return best;
  }
  function isFull() {
    var limit = grid.clientHeight;
    return columns.every(function (col) { return columnHeight(col) >= limit; });
  }

  function buildColumns() {
    var count = Math.max(2, Math.min(8, Math.round(grid.clientWidth / COLUMN_PX)));
    if (count === columns.length) { return; }
    // Keep the tiles, in reading order (row by row across the old columns).
    var old = columns.map(function (col) { return Array.prototype.slice.call(col.children); });
    var ordered = [];
    for (var row = 0; old.some(function (list) { return row < list.length; }); row++) {
      old.forEach(function (list) { if (row < list.length) { ordered.push(list[row]); } });
    }
    grid.textContent = "";
    columns = [];
    for (var i = 0; i < count; i++) {
      var col = document.createElement("div");
      col.className = "wall__column";
      col.dataset.changed = "0";
      grid.appendChild(col);
      columns.push(col);
    }
    ordered.forEach(function (tile) {
      if (tile.classList.contains("is-leaving")) { forget(tile); return; }
      var target = shortest();
      target.appendChild(tile);
      sizeTile(tile);
    });
  }

  // ---- tiles --------------------------------------------------------------------------------

  function imageUrl(item) {
    var px = columnWidth() * (window.devicePixelRatio || 1);
    return px <= THUMB_PX && item.thumb ? item.thumb : item.image;
  }

  function fillCaption(tile, item) {
    var cap = item.caption || {};
    var figcaption = tile.querySelector("figcaption");
    setText(tile.querySelector(".tile__name"), cap.name);
    setText(tile.querySelector(".tile__city"), cap.city);
    var message = tile.querySelector(".tile__message");
    setText(message, cap.message);
    message.lang = cap.lang || "";
    figcaption.dir = cap.dir || "auto";
    figcaption.hidden = !(cap.name || cap.city || cap.message);
    tile.classList.toggle("is-pinned", !!item.pinned);
    tile.querySelector("img").alt = item.alt || "";
  }

  function makeTile(item) {
    var tile = document.createElement("figure");
    tile.className = "wall-tile";
    tile.dataset.item = item.id;
    tile.dataset.w = String(item.width || 1);
    tile.dataset.h = String(item.height || 1);
    tile.style.backgroundColor = /^#[0-9a-fA-F]{6}$/.test(item.color || "") ? item.color : "#222";
    var img = document.createElement("img");
    img.decoding = "async";
    img.addEventListener("load", function () { tile.classList.add("is-loaded"); });
    img.addEventListener("error", function () { retire(tile, true); });
    var figcaption = document.createElement("figcaption");
    var who = document.createElement("p");
    who.className = "tile__who";
    var name = document.createElement("span");
    name.className = "tile__name";
    var city = document.createElement("span");
    city.className = "tile__city";
    who.appendChild(name);
    who.appendChild(city);
    var message = document.createElement("p");
    message.className = "tile__message";
    figcaption.appendChild(who);
    figcaption.appendChild(message);
    tile.appendChild(img);
    tile.appendChild(figcaption);
    fillCaption(tile, item);
    tiles.set(item.id, tile);
    img.src = imageUrl(item);
    return tile;
  }

  function forget(tile) {
    if (tiles.get(tile.dataset.item) === tile) { tiles.delete(tile.dataset.item); }
    var img = tile.querySelector("img");
    if (img) { img.removeAttribute("src"); }
    if (tile.parentNode) { tile.parentNode.removeChild(tile); }
  }

  // Take a tile off the wall: the photo goes at once, the gap closes slowly.
  function retire(tile, refill) {
    if (tile.classList.contains("is-leaving")) { return; }
    tile.classList.add("is-leaving");
    if (tiles.get(tile.dataset.item) === tile) { tiles.delete(tile.dataset.item); }
    var img = tile.querySelector("img");
    if (img) { img.removeAttribute("src"); img.hidden = true; }
    if (still()) { forget(tile); if (refill) { fill(); } return; }
    tile.style.height = "0px";
    setTimeout(function () { forget(tile); if (refill) { fill(); } }, GROW_MS);
  }

  // Tiles entirely below the screen's edge are not seen any more: retire them quietly.
  function retireOverflow(col) {
    var limit = grid.clientHeight;
    var top = 0;
    var g = gap();
    liveTiles(col).forEach(function (tile) {
      if (top >= limit && !tile.classList.contains("is-pinned")) { forget(tile); return; }
      top += (Number(tile.dataset.target) || 0) + g;
    });
  }

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

  function fill() {
    if (!columns.length) { return; }
    for (var guard = 0; guard < 300 && !isFull(); guard++) {
      var item = nextCandidate();
      if (!item) { break; }
      var tile = makeTile(item);
      shortest().appendChild(tile);
      sizeTile(tile);
      tile.classList.add("is-shown");
    }
    updateEmpty();
  }

  function columnForNew() {
    var best = columns[0];
    columns.forEach(function (col) {
      if (Number(col.dataset.changed) < Number(best.dataset.changed)) { best = col; }
    });
    return best;
  }

  function bringIn(item) {
    var col = columnForNew();
    col.dataset.changed = String(Date.now());
    var tile = makeTile(item);
    var children = liveTiles(col);
    var pinned = 0;
    while (pinned < children.length && children[pinned].classList.contains("is-pinned")) { pinned++; }
    col.insertBefore(tile, children[pinned] || null);
    var target = targetHeight(tile);
    tile.dataset.target = String(target);
    if (still()) {
      tile.style.height = target + "px";
      tile.classList.add("is-shown");
      retireOverflow(col);
    } else {
      tile.style.height = "0px";
      void tile.offsetHeight;  // start the height transition from zero
      tile.style.height = target + "px";
      setTimeout(function () { tile.classList.add("is-shown"); }, GROW_MS / 3);
      setTimeout(function () { retireOverflow(col); }, GROW_MS);
    }
    updateEmpty();
  }

  function updateEmpty() { show(emptyEl, !!feed && tiles.size === 0); }

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
    if (item) { bringIn(item); }
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
    tiles.forEach(function (tile, id) {
      if (byId.has(id)) { fillCaption(tile, byId.get(id)); } else { retire(tile, true); }
    });
    if (cursor > items.length) { cursor = 0; }
    if (first) {
      buildColumns();
      fill();
      schedule(interval());
      report(true);
      return;
    }
    fill();
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

  // ---- network: SSE with polling fallback (as the slideshow) ---------------------------------

  var source = null;
  var lastMessage = 0;
  var pollTimer = null;
  var fetching = false;

  function setOnline(value) {
    online = value;
    wall.classList.toggle("is-offline", !value);
  }

  function fetchFeed() {
    if (fetching || gone) { return Promise.resolve(); }
    fetching = true;
    var headers = {};
    if (feed && wall.dataset.etag) { headers["If-None-Match"] = wall.dataset.etag; }
    return fetch(wall.dataset.feed, { headers: headers, cache: "no-store", credentials: "same-origin" })
      .then(function (res) {
        setOnline(true);
        if (res.status === 304) { return null; }
        if (res.status === 404) { linkGone(); return null; }
        if (!res.ok) { return null; }
        wall.dataset.etag = res.headers.get("ETag") || "";
        return res.json().then(function (doc) {
          applyFeed(doc);
          applyControl(doc.control);
        });
      })
      .catch(function () { setOnline(false); })
      .then(function () { fetching = false; });
  }

  function onState(data) {
    lastMessage = Date.now();
    setOnline(true);
    applyControl(data.control);
    if (!feed || data.version !== feed.version) { fetchFeed(); }
  }

  function connectStream() {
    if (!window.EventSource || gone) { startPolling(); return; }
    if (source) { source.close(); }
    source = new EventSource(wall.dataset.events);
    lastMessage = Date.now();
    source.addEventListener("state", function (e) {
      try { onState(JSON.parse(e.data)); } catch (err) { /* a torn message: the next one repairs it */ }
      stopPolling();
    });
    source.addEventListener("ping", function () { lastMessage = Date.now(); setOnline(true); });
    source.addEventListener("gone", function () { linkGone(); });
    source.onerror = function () { startPolling(); };
  }

  function startPolling() {
    if (pollTimer || gone) { return; }
    pollTimer = setInterval(fetchFeed, POLL_MS);
  }

  function stopPolling() {
    if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
  }

  function watchdog() {
    if (gone) { return; }
    if (source && Date.now() - lastMessage > SSE_STALE_MS) {
      source.close();
      source = null;
      startPolling();
    }
    if (!source && Date.now() - lastMessage > SSE_RETRY_MS) { connectStream(); }
  }

  function linkGone() {
    gone = true;
    if (source) { source.close(); source = null; }
    stopPolling();
    clearTimeout(timer);
    feed = null; items = []; byId = new Map(); queue = [];
    tiles.forEach(function (tile) { forget(tile); });
    show(emptyEl, false);
    show(blankEl, true);
    wall.dataset.current = "gone";
  }

  // ---- heartbeat ----------------------------------------------------------------------------

  function screenKey() {
    var key = null;
    try { key = window.localStorage.getItem("wr-screen"); } catch (e) { key = null; }
    if (!key || !/^[A-Za-z0-9_-]{8,64}$/.test(key)) {
      var bytes = new Uint8Array(12);
      window.crypto.getRandomValues(bytes);
      key = Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
      try { window.localStorage.setItem("wr-screen", key); } catch (e) { /* private mode */ }
    }
    return key;
  }

  var lastReport = 0;
  function report(force) {
    if (MODE !== "live" || gone || !wall.dataset.heartbeat) { return; }
    if (!force && Date.now() - lastReport < 3000) { return; }
    lastReport = Date.now();
    fetch(wall.dataset.heartbeat, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": wall.dataset.csrf || "" },
      body: JSON.stringify({
        screen: screenKey(),
        showing: control.blank || localBlank ? "blank" : "wall",
        label: window.screen ? window.screen.width + "×" + window.screen.height : ""
      })
    }).catch(function () { /* offline: the next heartbeat will do */ });
  }

  // ---- keys, cursor, resize, wake lock ------------------------------------------------------

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

  var cursorTimer = null;
  function wakeCursor() {
    document.body.classList.remove("cursor-hidden");
    clearTimeout(cursorTimer);
    cursorTimer = setTimeout(function () { document.body.classList.add("cursor-hidden"); }, CURSOR_IDLE_MS);
  }
  document.addEventListener("mousemove", wakeCursor);
  wakeCursor();

  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      if (!feed) { return; }
      buildColumns();
      tiles.forEach(sizeTile);
      columns.forEach(retireOverflow);
      fill();
    }, 300);
  });

  var wakeLock = null;
  function requestWakeLock() {
    if (!("wakeLock" in navigator) || document.visibilityState !== "visible") { return; }
    navigator.wakeLock.request("screen").then(function (lock) {
      wakeLock = lock;
      lock.addEventListener("release", function () { wakeLock = null; });
    }).catch(function () { /* not allowed here: the wall goes on */ });
  }
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && !wakeLock) { requestWakeLock(); }
  });

  // ---- start --------------------------------------------------------------------------------

  window.wrWall = {
    state: function () {
      return {
        mode: MODE,
        items: Array.from(tiles.keys()),
        queue: queue.slice(),
        columns: columns.length,
        paused: isPaused(),
        blank: control.blank || localBlank,
        online: online,
        version: feed ? feed.version : null
      };
    }
  };

  requestWakeLock();
  if (MODE === "offline") {
    if (window.WR_FEED) { applyFeed(window.WR_FEED); }
  } else {
    fetchFeed().then(function () { connectStream(); });
    setInterval(watchdog, 10000);
    setInterval(function () { report(true); }, HEARTBEAT_MS);
  }
})();
