/* The wall's masonry: columns that fill the screen, tiles sized from the feed's width and
 * height (never waiting for an image), a slow grow-in at the top of the column that changed
 * least recently, and tiles retired once they slide below the screen's edge. wall.js decides
 * what enters and when; this file only lays tiles out.
 *
 *   var grid = wrWallGrid(element, { next: function () { return item or null; },
 *                                     changed: function () {} });
 */
(function () {
  "use strict";

  var GROW_MS = 1300;            // matches --grow in wall.css (plus a little)
  var COLUMN_PX = 380;           // aimed-at column width
  var THUMB_PX = 480;            // the thumbnail derivative's box

  window.wrWallGrid = function (grid, options) {
    var columns = [];
    var tiles = new Map();       // id -> tile element on the wall
    var reduceMotion = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)");

    function still() { return !!(reduceMotion && reduceMotion.matches); }
    function setText(el, value) { if (el) { el.textContent = value || ""; } }

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

    function fill() {
      if (!columns.length) { return; }
      for (var guard = 0; guard < 300 && !isFull(); guard++) {
        var item = options.next();
        if (!item) { break; }
        var tile = makeTile(item);
        shortest().appendChild(tile);
        sizeTile(tile);
        tile.classList.add("is-shown");
      }
      options.changed();
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
      options.changed();
    }


    // Build (or rebuild after a resize) the columns, size every tile, refill the screen.
    function layout() {
      buildColumns();
      tiles.forEach(sizeTile);
      columns.forEach(retireOverflow);
      fill();
    }

    function update(item) {
      var tile = tiles.get(item.id);
      if (tile) { fillCaption(tile, item); }
    }

    function remove(id) {
      var tile = tiles.get(id);
      if (tile) { retire(tile, true); }
    }

    function clear() {
      tiles.forEach(function (tile) { forget(tile); });
      options.changed();
    }

    return {
      layout: layout,
      fill: fill,
      bringIn: bringIn,
      update: update,
      remove: remove,
      clear: clear,
      has: function (id) { return tiles.has(id); },
      ids: function () { return Array.from(tiles.keys()); },
      size: function () { return tiles.size; },
      columns: function () { return columns.length; }
    };
  };
})();
