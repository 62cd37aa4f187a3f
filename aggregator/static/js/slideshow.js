/* The memorial slideshow: live (/show/{token}) and offline bundle (index.html from file://).
 *
 * One loop runs for hours and is never restarted: feed updates change the list it walks
 * (new approvals are queued to show next, removed items vanish at once), control messages
 * from the host blank, pause, step or start a moment of silence. A fixed pool of three
 * <figure> elements is reused, so memory stays flat. Network trouble never reaches the
 * screen: the loop keeps showing what it has and reconnects quietly. The network side (feed,
 * event stream, heartbeat, wake lock, idle cursor) is display_link.js.
 */
(function () {
  "use strict";

  var stage = document.getElementById("stage");
  if (!stage) { return; }

  var MODE = stage.dataset.mode || "live";
  var LOAD_TIMEOUT_MS = 15000;   // an image that does not load by then is skipped

  var photos = Array.prototype.slice.call(stage.querySelectorAll(".slide--photo"));
  var textSlide = stage.querySelector(".slide--text");
  var blankEl = stage.querySelector(".stage__blank");
  var emptyEl = stage.querySelector(".stage__empty");
  var statusEl = stage.querySelector(".stage__status");
  var helpEl = stage.querySelector(".stage__help");
  var reduceMotion = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)");

  var feed = null;               // the last feed document
  var items = [];                // feed.items, in showing order
  var byId = new Map();
  var known = null;              // ids seen so far (null until the first feed)
  var upNext = [];               // ids to show before the loop continues (new, pinned, jump)
  var pos = { phase: "start", cursor: -1, sinceQr: 0 };
  var history = [];              // photo ids shown, for "previous"
  var current = { kind: "none", id: "" };
  var timer = null;
  var silenceTimer = null;
  var control = { blank: false, paused: false, silence_until: null, seq: 0, command: null };
  var seqSeen = null;
  var clockOffset = 0;           // server time minus local time, for the silence countdown
  var localPause = false;
  var localBlank = false;
  var pausedNow = false;         // the paused state last acted on
  var online = true;

  // ---- helpers --------------------------------------------------------------------------

  function setText(el, value) { if (el) { el.textContent = value || ""; } }
  function show(el, visible) { if (el) { el.hidden = !visible; } }
  function interval() { return Math.max(1, (feed && feed.settings.interval) || 8) * 1000; }
  // Blanking pauses too, so nobody misses a photo while the screen is dark.
  function isPaused() { return localPause || localBlank || control.paused || control.blank; }
  function silenceLeft() {
    if (!control.silence_until) { return 0; }
    return Math.max(0, Date.parse(control.silence_until) - (Date.now() + clockOffset));
  }
  function status(message) {
    setText(statusEl, message);
    statusEl.classList.toggle("is-visible", !!message);
  }

  // ---- choosing the next step -------------------------------------------------------------

  function hasText(part) { return !!(part && (part.title || part.text)); }

  // Pure: the step after `p` (does not change any state), and the position after it.
  function computeNext(p) {
    var next = { phase: p.phase, cursor: p.cursor, sinceQr: p.sinceQr, consumed: 0 };
    for (var i = 0; i < upNext.length; i++) {
      if (byId.has(upNext[i])) {
        next.consumed = i + 1;
        return { step: { kind: "photo", id: upNext[i] }, pos: next };
      }
    }
    if (!feed) { return { step: { kind: "none" }, pos: next }; }
    for (var guard = 0; guard < 6; guard++) {
      if (next.phase === "start") {
        next.phase = "intro";
        if (hasText(feed.intro)) { return { step: { kind: "intro" }, pos: next }; }
      }
      if (next.phase === "intro") {
        next.phase = "silence";
        if (feed.settings.silence_slide) { return { step: { kind: "silence" }, pos: next }; }
      }
      if (next.phase === "silence") { next.phase = "photos"; next.cursor = -1; next.sinceQr = 0; }
      if (next.phase === "photos") {
        var every = feed.settings.qr_every;
        if (feed.qr && every && next.sinceQr >= every && items.length) {
          next.sinceQr = 0;
          return { step: { kind: "qr" }, pos: next };
        }
        if (next.cursor + 1 < items.length) {
          next.cursor += 1;
          next.sinceQr += 1;
          return { step: { kind: "photo", id: items[next.cursor].id }, pos: next };
        }
        next.phase = "closing";
        if (hasText(feed.closing) && items.length) { return { step: { kind: "closing" }, pos: next }; }
      }
      if (next.phase === "closing") {
        next.phase = "start";
        if (!items.length && !hasText(feed.intro)) { return { step: { kind: "empty" }, pos: next }; }
      }
    }
    return { step: { kind: "empty" }, pos: next };
  }

  function commit(result) {
    upNext.splice(0, result.pos.consumed);
    pos = { phase: result.pos.phase, cursor: result.pos.cursor, sinceQr: result.pos.sinceQr };
  }

  // ---- showing ----------------------------------------------------------------------------

  function freeFigure(exceptId) {
    var active = stage.querySelector(".slide--photo.is-active");
    for (var i = 0; i < photos.length; i++) {
      if (photos[i] !== active && photos[i].dataset.item === exceptId) { return photos[i]; }
    }
    for (var j = 0; j < photos.length; j++) {
      if (photos[j] !== active && photos[j].dataset.item !== stage.dataset.preload) { return photos[j]; }
    }
    for (var k = 0; k < photos.length; k++) { if (photos[k] !== active) { return photos[k]; } }
    return photos[0];
  }

  function fillFigure(fig, item) {
    var img = fig.querySelector(".slide__image");
    var cap = item.caption || {};
    if (fig.dataset.item !== item.id) {
      fig.dataset.item = item.id;
      fig.dataset.ready = "";
      img.src = item.image;
    }
    img.alt = item.alt || "";
    fig.style.setProperty("--tint", item.color || "#000");
    var captionEl = fig.querySelector(".slide__caption");
    setText(fig.querySelector(".caption__name"), cap.name);
    setText(fig.querySelector(".caption__city"), cap.city);
    var message = fig.querySelector(".caption__message");
    setText(message, cap.message);
    // Only the message carries its language's direction; name and city find their own.
    message.lang = cap.lang || "";
    message.dir = cap.dir || "auto";
    setText(fig.querySelector(".caption__source"), cap.source);
    captionEl.hidden = !(cap.name || cap.city || cap.message || cap.source);
    return img;
  }

  function whenLoaded(img) {
    return new Promise(function (resolve, reject) {
      if (img.complete && img.naturalWidth > 0) { resolve(); return; }
      var done = false;
      var t = setTimeout(function () { finish(false); }, LOAD_TIMEOUT_MS);
      function finish(ok) {
        if (done) { return; }
        done = true;
        clearTimeout(t);
        img.removeEventListener("load", onLoad);
        img.removeEventListener("error", onError);
        if (ok) { resolve(); } else { reject(new Error("image")); }
      }
      function onLoad() { finish(true); }
      function onError() { finish(false); }
      img.addEventListener("load", onLoad);
      img.addEventListener("error", onError);
    });
  }

  function activate(el) {
    var all = stage.querySelectorAll(".slide");
    for (var i = 0; i < all.length; i++) {
      var on = all[i] === el;
      all[i].classList.toggle("is-active", on);
      all[i].setAttribute("aria-hidden", on ? "false" : "true");
    }
  }

  var loading = false;

  function showPhoto(item, token) {
    var fig = freeFigure(item.id);
    var img = fillFigure(fig, item);
    loading = true;
    return whenLoaded(img).then(function () {
      if (token !== stepToken) { return; }
      loading = false;
      if (!byId.has(item.id)) { advance(); return; }   // removed while it loaded
      activate(fig);
      current = { kind: "photo", id: item.id };
      history.push(item.id);
      if (history.length > 100) { history.shift(); }
      afterShow(interval());
    }, function () {
      if (token !== stepToken) { return; }
      loading = false;
      fig.dataset.item = "";
      setTimeout(function () { if (token === stepToken) { advance(); } }, 500);
    });
  }

  function showText(kind) {
    var part = kind === "intro" ? feed.intro : kind === "closing" ? feed.closing : null;
    var title = part ? part.title : kind === "qr" ? feed.qr && feed.qr.text : feed.strings.silence;
    setText(textSlide.querySelector(".text__title"), title);
    setText(textSlide.querySelector(".text__body"), part ? part.text : "");
    var qr = textSlide.querySelector(".text__qr");
    var url = textSlide.querySelector(".text__url");
    var logo = textSlide.querySelector(".text__logo");
    var withQr = kind === "qr" && feed.qr;
    if (withQr && qr.getAttribute("src") !== feed.qr.image) { qr.src = feed.qr.image; }
    show(qr, !!withQr);
    setText(url, withQr ? feed.qr.url : "");
    var logoUrl = feed.settings.logo;
    if (logoUrl && kind !== "silence" && logo.getAttribute("src") !== logoUrl) { logo.src = logoUrl; }
    show(logo, !!logoUrl && kind !== "silence");
    textSlide.dataset.kind = kind;
    show(textSlide.querySelector(".text__timer"), kind === "silence");
    activate(textSlide);
    current = { kind: kind, id: kind };
  }

  var stepToken = 0;

  function runStep(step) {
    stepToken += 1;
    loading = false;
    clearTimeout(timer);
    timer = null;
    clearInterval(silenceTimer);
    silenceTimer = null;
    show(emptyEl, step.kind === "empty" || step.kind === "none");
    if (step.kind === "photo") { return showPhoto(byId.get(step.id), stepToken); }
    if (step.kind === "empty" || step.kind === "none") {
      activate(null);
      current = { kind: "empty", id: "empty" };
      afterShow(interval());
      return null;
    }
    showText(step.kind);
    if (step.kind === "silence") {
      startCountdown(feed.settings.silence_seconds * 1000, function () { advance(); });
      return null;
    }
    afterShow(step.kind === "qr" ? interval() : interval() * 1.5);
    return null;
  }

  function afterShow(ms) {
    stage.dataset.current = current.id;
    report();
    preloadNext();
    schedule(ms);
  }

  function schedule(ms) {
    clearTimeout(timer);
    timer = null;
    if (isPaused() || silenceLeft() > 0) { return; }
    timer = setTimeout(advance, ms);
  }

  function advance() {
    if (silenceLeft() > 0) { return; }
    var result = computeNext(pos);
    commit(result);
    runStep(result.step);
  }

  function preloadNext() {
    var peek = computeNext(pos).step;
    stage.dataset.preload = "";
    if (peek.kind !== "photo") { return; }
    var item = byId.get(peek.id);
    if (!item) { return; }
    var fig = freeFigure(item.id);
    fillFigure(fig, item);
    stage.dataset.preload = item.id;
  }

  function goPrevious() {
    // history ends with the current photo; the one before it is "previous".
    if (current.kind === "photo") {
      if (history.length < 2) { return; }
      history.pop();
    }
    var id = history.pop();
    if (!id) { return; }
    var index = items.findIndex(function (it) { return it.id === id; });
    if (index < 0) { return; }
    pos = { phase: "photos", cursor: index - 1, sinceQr: 0 };
    advance();
  }

  // ---- moment of silence --------------------------------------------------------------------

  function formatTime(ms) {
    var s = Math.ceil(ms / 1000);
    var m = Math.floor(s / 60);
    s = s % 60;
    return m + ":" + (s < 10 ? "0" : "") + s;
  }

  function startCountdown(ms, done) {
    clearInterval(silenceTimer);
    var ends = Date.now() + ms;
    var timerEl = textSlide.querySelector(".text__timer");
    function tick() {
      var left = Math.max(0, ends - Date.now());
      setText(timerEl, formatTime(left));
      if (left <= 0) { clearInterval(silenceTimer); silenceTimer = null; done(); }
    }
    stage.dataset.current = "silence";
    report();
    tick();
    silenceTimer = setInterval(tick, 250);
  }

  function applySilence() {
    var left = silenceLeft();
    if (left > 0) {
      if (current.kind === "silence" && silenceTimer) { return; }
      stepToken += 1;
      clearTimeout(timer);
      showText("silence");
      startCountdown(left, function () { control.silence_until = null; advance(); });
    } else if (current.kind === "silence" && !(feed && feed.settings.silence_slide && pos.phase === "silence")) {
      clearInterval(silenceTimer);
      silenceTimer = null;
      advance();
    }
  }

  // ---- feed and control ---------------------------------------------------------------------

  function applyFeed(doc) {
    var first = feed === null;
    var before = new Map(byId);
    feed = doc;
    items = doc.items || [];
    byId = new Map();
    items.forEach(function (it) { byId.set(it.id, it); });
    stage.dataset.version = doc.version;
    stage.dataset.count = String(items.length);
    stage.classList.toggle("transition-none", doc.settings.transition === "none");
    stage.classList.toggle("transition-crossfade", doc.settings.transition !== "none");
    document.body.className = document.body.className.replace(/\btheme-\w+/, "theme-" + doc.settings.theme);
    if (doc.server_time) { clockOffset = Date.parse(doc.server_time) - Date.now(); }
    if (known === null) {
      known = new Set(items.map(function (it) { return it.id; }));
    } else {
      var fresh = [];
      items.forEach(function (it) {
        var old = before.get(it.id);
        if (!known.has(it.id)) { known.add(it.id); fresh.push(it); }
        else if (it.pinned && old && !old.pinned) { fresh.push(it); }
      });
      // Pinned first, then newest approvals in feed order.
      fresh.sort(function (a, b) { return (b.pinned ? 1 : 0) - (a.pinned ? 1 : 0); });
      fresh.forEach(function (it) {
        if (upNext.indexOf(it.id) < 0) { if (it.pinned) { upNext.unshift(it.id); } else { upNext.push(it.id); } }
      });
    }
    upNext = upNext.filter(function (id) { return byId.has(id); });
    history = history.filter(function (id) { return byId.has(id); });
    photos.forEach(function (fig) {
      if (fig.dataset.item && !byId.has(fig.dataset.item)) {
        if (!fig.classList.contains("is-active")) { clearFigure(fig); }
      }
    });
    // Keep the loop where it was: the cursor follows the item it pointed at.
    if (current.kind === "photo") {
      var index = items.findIndex(function (it) { return it.id === current.id; });
      if (index >= 0) { pos.cursor = pos.phase === "photos" ? index : pos.cursor; }
      else { pos.cursor = Math.min(pos.cursor, items.length) - 1; }
    }
    if (pos.cursor >= items.length) { pos.cursor = items.length - 1; }
    if (first) { advance(); return; }
    if (current.kind === "photo" && !byId.has(current.id)) { advance(); return; }
    if (current.kind === "empty" && items.length) { advance(); return; }
    if (!timer && !loading && !isPaused() && !silenceLeft() && current.kind !== "silence") { advance(); return; }
    preloadNext();
  }

  function clearFigure(fig) {
    fig.dataset.item = "";
    var img = fig.querySelector(".slide__image");
    img.removeAttribute("src");
    img.alt = "";
  }

  function applyControl(next) {
    if (!next) { return; }
    var wasPaused = pausedNow;
    control = next;
    pausedNow = isPaused();
    if (seqSeen === null) { seqSeen = next.seq; }
    show(blankEl, control.blank || localBlank);
    stage.classList.toggle("is-blank", control.blank || localBlank);
    stage.classList.toggle("is-paused", isPaused());
    if (control.command && control.command.seq > seqSeen) {
      var cmd = control.command;
      if (cmd.action === "next") { advance(); }
      else if (cmd.action === "prev") { goPrevious(); }
      else if (cmd.action === "jump" && byId.has(cmd.item)) { upNext.unshift(cmd.item); advance(); }
    }
    seqSeen = Math.max(seqSeen, next.seq);
    applySilence();
    if (wasPaused && !isPaused() && !timer && !loading && current.kind !== "silence") { schedule(interval()); }
    if (!wasPaused && isPaused()) { clearTimeout(timer); timer = null; }
  }

  // ---- the link: feed, event stream, heartbeat (display_link.js) ---------------------------

  var link = window.wrDisplayLink(stage, {
    onFeed: applyFeed,
    onControl: applyControl,
    onGone: linkGone,
    onOnline: function (value) { online = value; },
    showing: function () { return control.blank || localBlank ? "blank" : (current.id || "empty"); }
  });

  function report(force) { link.report(force); }

  function linkGone() {
    // The host revoked the link: stop showing photos, quietly.
    clearTimeout(timer);
    feed = null; items = []; byId = new Map(); upNext = [];
    photos.forEach(clearFigure);
    activate(null);
    show(blankEl, true);
  }

  // ---- keyboard and motion ---------------------------------------------------------------

  function toggleFullscreen() {
    if (document.fullscreenElement) { document.exitFullscreen().catch(function () {}); }
    else if (document.documentElement.requestFullscreen) {
      document.documentElement.requestFullscreen().catch(function () {});
    }
  }

  function toggleBlank() {
    localBlank = !localBlank;
    applyControl(control);
    report(true);
  }

  function togglePause() {
    localPause = !localPause;
    status(localPause && feed ? feed.strings.paused : "");
    applyControl(control);
  }

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) { return; }
    var key = e.key;
    if (key === "ArrowRight" || key === " " || key === "PageDown") { e.preventDefault(); advance(); }
    else if (key === "ArrowLeft" || key === "PageUp") { e.preventDefault(); goPrevious(); }
    else if (key === "f" || key === "F") { toggleFullscreen(); }
    else if (key === "b" || key === "B" || key === ".") { toggleBlank(); }
    else if (key === "p" || key === "P") { togglePause(); }
    else if (key === "?") { helpEl.hidden = !helpEl.hidden; }
    else if (key === "Escape") { helpEl.hidden = true; }
  });

  function motionChanged() {
    stage.classList.toggle("reduce-motion", !!(reduceMotion && reduceMotion.matches));
  }
  if (reduceMotion && reduceMotion.addEventListener) { reduceMotion.addEventListener("change", motionChanged); }
  motionChanged();

  // ---- start --------------------------------------------------------------------------------

  window.wrSlideshow = {
    state: function () {
      return {
        mode: MODE, current: current.id, kind: current.kind, items: items.map(function (it) { return it.id; }),
        upNext: upNext.slice(), paused: isPaused(), blank: control.blank || localBlank, online: online
      };
    }
  };

  if (MODE === "offline") {
    if (window.WR_FEED) { applyFeed(window.WR_FEED); }
  }
  link.start();
})();
