/* What every live display of a share link needs besides its layout: the feed (ETag polling),
 * the server-sent event stream with a polling fallback and a watchdog, the screen heartbeat,
 * a revoked link, the screen wake lock and a hidden idle cursor. Network trouble never
 * reaches the screen: the display keeps what it has and reconnects quietly.
 *
 *   var link = wrDisplayLink(element, {
 *     onFeed: function (doc) {}, onControl: function (control) {}, onGone: function () {},
 *     showing: function () { return "wall"; }, onOnline: function (online) {}
 *   });
 *   link.start();  link.report(true);
 *
 * The element carries data-feed, data-events, data-heartbeat and data-csrf (see wall.html).
 */
(function () {
  "use strict";

  var POLL_MS = 5000;            // polling fallback period
  var SSE_STALE_MS = 45000;      // no message for this long: the stream is dead
  var SSE_RETRY_MS = 60000;      // while polling, try the stream again this often
  var HEARTBEAT_MS = 30000;
  var CURSOR_IDLE_MS = 2500;

  window.wrDisplayLink = function (el, handlers) {
    var source = null;
    var lastMessage = 0;
    var pollTimer = null;
    var fetching = false;
    var gone = false;
    var version = null;
    var lastReport = 0;

    function setOnline(value) {
      el.classList.toggle("is-offline", !value);
      if (handlers.onOnline) { handlers.onOnline(value); }
    }

    function fetchFeed() {
      if (fetching || gone) { return Promise.resolve(); }
      fetching = true;
      var headers = {};
      if (version !== null && el.dataset.etag) { headers["If-None-Match"] = el.dataset.etag; }
      return fetch(el.dataset.feed, { headers: headers, cache: "no-store", credentials: "same-origin" })
        .then(function (res) {
          setOnline(true);
          if (res.status === 304) { return null; }
          if (res.status === 404) { linkGone(); return null; }
          if (!res.ok) { return null; }
          el.dataset.etag = res.headers.get("ETag") || "";
          return res.json().then(function (doc) {
            version = doc.version;
            handlers.onFeed(doc);
            handlers.onControl(doc.control);
          });
        })
        .catch(function () { setOnline(false); })
        .then(function () { fetching = false; });
    }

    function onState(data) {
      lastMessage = Date.now();
      setOnline(true);
      handlers.onControl(data.control);
      if (version === null || data.version !== version) { fetchFeed(); }
    }

    function connectStream() {
      if (!window.EventSource || gone) { startPolling(); return; }
      if (source) { source.close(); }
      source = new EventSource(el.dataset.events);
      lastMessage = Date.now();
      source.addEventListener("state", function (e) {
        try { onState(JSON.parse(e.data)); } catch (err) { /* a torn message: the next one repairs it */ }
        stopPolling();
      });
      source.addEventListener("ping", function () { lastMessage = Date.now(); setOnline(true); });
      source.addEventListener("gone", function () { linkGone(); });
      // The browser reconnects by itself; meanwhile poll so nothing is missed.
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
      // The host revoked the link: stop showing photos, quietly.
      gone = true;
      if (source) { source.close(); source = null; }
      stopPolling();
      el.dataset.current = "gone";
      handlers.onGone();
    }

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

    function report(force) {
      if (el.dataset.mode !== "live" || gone || !el.dataset.heartbeat) { return; }
      if (!force && Date.now() - lastReport < 3000) { return; }
      lastReport = Date.now();
      fetch(el.dataset.heartbeat, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": el.dataset.csrf || "" },
        body: JSON.stringify({
          screen: screenKey(),
          showing: handlers.showing(),
          label: window.screen ? window.screen.width + "×" + window.screen.height : ""
        })
      }).catch(function () { /* offline: the next heartbeat will do */ });
    }

    var wakeLock = null;
    function requestWakeLock() {
      if (!("wakeLock" in navigator) || document.visibilityState !== "visible") { return; }
      navigator.wakeLock.request("screen").then(function (lock) {
        wakeLock = lock;
        lock.addEventListener("release", function () { wakeLock = null; });
      }).catch(function () { /* not allowed here (e.g. no secure context): the show goes on */ });
    }

    var cursorTimer = null;
    function wakeCursor() {
      document.body.classList.remove("cursor-hidden");
      clearTimeout(cursorTimer);
      cursorTimer = setTimeout(function () { document.body.classList.add("cursor-hidden"); }, CURSOR_IDLE_MS);
    }

    function start() {
      document.addEventListener("mousemove", wakeCursor);
      wakeCursor();
      document.addEventListener("visibilitychange", function () {
        if (document.visibilityState === "visible" && !wakeLock) { requestWakeLock(); }
      });
      requestWakeLock();
      if (el.dataset.mode !== "live") { return; }
      fetchFeed().then(function () { connectStream(); });
      setInterval(watchdog, 10000);
      setInterval(function () { report(true); }, HEARTBEAT_MS);
    }

    return { start: start, report: report, fetchFeed: fetchFeed };
  };
})();
