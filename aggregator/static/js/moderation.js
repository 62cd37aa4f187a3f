// Keyboard-driven moderation queue. Every action goes through the JSON API
// (/api/v1/submissions/...), the same one the API documentation describes; without this
// script, each card's buttons post plain forms instead.
(function () {
  "use strict";

  var root = document.getElementById("moderation");
  var strings = document.getElementById("mod-strings");
  if (!root || !strings) return;
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";
  var statusLine = document.getElementById("mod-status");
  var selectionCount = document.getElementById("selection-count");
  var rejectDialog = document.getElementById("reject-dialog");
  var editDialog = document.getElementById("edit-dialog");
  var helpDialog = document.getElementById("help-dialog");
  var current = -1;
  var history = []; // decisions made on this page, newest last: {id, action}

  function t(name) { return strings.getAttribute("data-l-" + name) || name; }
  function cards() { return Array.prototype.slice.call(document.querySelectorAll(".mod-card")); }
  function say(text) { statusLine.textContent = text; }

  function focusCard(index) {
    var list = cards();
    if (!list.length) return;
    index = Math.max(0, Math.min(list.length - 1, index));
    if (current >= 0 && list[current]) list[current].classList.remove("is-current");
    current = index;
    var card = list[current];
    card.classList.add("is-current");
    card.focus({ preventScroll: true });
    card.scrollIntoView({ block: "nearest" });
  }

  function currentCard() {
    var list = cards();
    return current >= 0 ? list[current] || null : null;
  }

  function nextUndecided() {
    var list = cards();
    for (var i = current + 1; i < list.length; i++) {
      if (list[i].getAttribute("data-status") === "pending") { focusCard(i); return; }
    }
    say(t("end"));
  }

  function api(path, body) {
    return fetch("/api/v1" + path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, "Accept": "application/json" },
      body: JSON.stringify(body || {})
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (response.status === 401) {
          say(t("login"));
          window.location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
        }
        if (!response.ok) {
          var message = data && data.error ? data.error.message : String(response.status);
          throw new Error(message);
        }
        return data;
      });
    });
  }

  function fail(error) { say(t("error") + " " + error.message); }

  function setStatus(card, status) {
    card.setAttribute("data-status", status);
    var badge = card.querySelector('[data-role="status"]');
    if (badge) badge.textContent = t(status === "removed" ? "removed" : status);
    // The card's buttons no longer match the state; hide those that do not apply.
    card.querySelectorAll(".mod-action-form [data-action]").forEach(function (button) {
      var action = button.getAttribute("data-action");
      var show = (status === "pending" && (action === "approve" || action === "reject")) ||
        (status === "rejected" && action === "undo") || (status === "approved" && action === "remove");
      if (action === "pin" || action === "unpin") show = status === "pending" || status === "approved";
      button.hidden = !show;
    });
  }

  function approve(card) {
    var id = card.getAttribute("data-id");
    return api("/submissions/" + id + "/approve").then(function (data) {
      if (data.needs_second_approval) {
        card.classList.add("is-first-approved");
        say("#" + id + ": " + t("first-approval"));
      } else {
        setStatus(card, data.status);
        history.push({ id: id, action: "approve" });
        say("#" + id + ": " + t("approved"));
      }
      nextUndecided();
    }, fail);
  }

  // --- dialogs ----------------------------------------------------------------------------

  function askReason(onReason) {
    var field = document.getElementById("reject-reason");
    field.value = "";
    rejectDialog.returnValue = "";
    rejectDialog.showModal();
    field.focus();
    rejectDialog.onclose = function () {
      rejectDialog.onclose = null;
      if (rejectDialog.returnValue === "ok") onReason(field.value.trim());
      var card = currentCard();
      if (card) card.focus({ preventScroll: true });
    };
  }

  rejectDialog.querySelectorAll("[data-reason]").forEach(function (button) {
    button.addEventListener("click", function () {
      document.getElementById("reject-reason").value = button.getAttribute("data-reason");
      rejectDialog.close("ok");
    });
  });
  rejectDialog.addEventListener("keydown", function (event) {
    var field = document.getElementById("reject-reason");
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); rejectDialog.close("ok"); return; }
    // A digit typed into the still-empty field picks one of the common reasons.
    if ((document.activeElement !== field || field.value === "") && /^[1-6]$/.test(event.key)) {
      var choice = rejectDialog.querySelectorAll("[data-reason]")[Number(event.key) - 1];
      if (choice) { event.preventDefault(); choice.click(); }
    }
  });

  function reject(card) {
    var id = card.getAttribute("data-id");
    askReason(function (reason) {
      api("/submissions/" + id + "/reject", { reason: reason }).then(function (data) {
        setStatus(card, data.status);
        history.push({ id: id, action: "reject" });
        say("#" + id + ": " + t("rejected"));
        nextUndecided();
      }, fail);
    });
  }

  function undo() {
    var last = history.pop();
    if (!last || last.action !== "reject") {
      if (last) history.push(last);
      say(t("no-undo"));
      return;
    }
    api("/submissions/" + last.id + "/undo").then(function (data) {
      var card = document.getElementById("card-" + last.id);
      if (card) {
        setStatus(card, data.status);
        focusCard(cards().indexOf(card));
      }
      say("#" + last.id + ": " + t("undone"));
    }, fail);
  }

  function edit(card) {
    var id = card.getAttribute("data-id");
    var author = card.querySelector(".mod-author-name");
    var text = card.querySelector(".mod-text");
    document.getElementById("edit-author").value = author ? author.textContent.trim() : "";
    document.getElementById("edit-text").value = text ? text.textContent : "";
    var alts = document.getElementById("edit-alts");
    alts.textContent = "";
    var template = document.getElementById("alt-template");
    card.querySelectorAll("[data-asset-id]").forEach(function (img, n) {
      var node = template.content.cloneNode(true);
      node.querySelector("[data-n]").textContent = String(n + 1);
      var area = node.querySelector("textarea");
      area.value = img.getAttribute("data-alt") || "";
      area.setAttribute("data-asset-id", img.getAttribute("data-asset-id"));
      alts.appendChild(node);
    });
    editDialog.returnValue = "";
    editDialog.showModal();
    document.getElementById("edit-text").focus();
    editDialog.onclose = function () {
      editDialog.onclose = null;
      card.focus({ preventScroll: true });
      if (editDialog.returnValue !== "ok") return;
      var altTexts = {};
      alts.querySelectorAll("textarea").forEach(function (area) {
        altTexts[area.getAttribute("data-asset-id")] = area.value;
      });
      var body = {
        text: document.getElementById("edit-text").value,
        author_name: document.getElementById("edit-author").value,
        alt_texts: altTexts
      };
      api("/submissions/" + id + "/edit", body).then(function (data) {
        if (author) author.textContent = data.author_name;
        if (text) text.textContent = data.text;
        card.querySelectorAll("[data-asset-id]").forEach(function (img) {
          var value = altTexts[img.getAttribute("data-asset-id")];
          if (value !== undefined) { img.setAttribute("data-alt", value); img.setAttribute("alt", value); }
        });
        say("#" + id + ": " + t("saved"));
      }, fail);
    };
  }

  function rotate(card) {
    var id = card.getAttribute("data-id");
    api("/submissions/" + id + "/rotate", { degrees: 90 }).then(function (data) {
      var images = card.querySelectorAll("img.mod-photo[data-asset-id]");
      images.forEach(function (img) {
        var asset = data.images.filter(function (a) { return String(a.id) === img.getAttribute("data-asset-id"); })[0];
        if (!asset) return;
        img.src = "/media/" + (asset.keys.thumb || asset.keys.slide);
        img.width = asset.width;
        img.height = asset.height;
        if (img.parentNode && img.parentNode.tagName === "A") img.parentNode.href = "/media/" + asset.keys.slide;
      });
      say("#" + id + ": " + t("rotated"));
    }, fail);
  }

  function pin(card) {
    var id = card.getAttribute("data-id");
    var badge = card.querySelector('[data-role="pin"]');
    var pinned = badge ? badge.hidden : true;
    api("/submissions/" + id + "/pin", { pinned: pinned }).then(function (data) {
      if (badge) badge.hidden = !data.pinned;
      say("#" + id + ": " + t(data.pinned ? "pinned" : "unpinned"));
    }, fail);
  }

  function takeDown(card) {
    if (card.getAttribute("data-status") !== "approved") return;
    var id = card.getAttribute("data-id");
    askReason(function (reason) {
      api("/submissions/" + id + "/remove", { reason: reason }).then(function (data) {
        setStatus(card, data.status);
        card.querySelectorAll("img.mod-photo").forEach(function (img) { img.removeAttribute("src"); });
        say("#" + id + ": " + t("removed"));
      }, fail);
    });
  }

  // --- selection and bulk -------------------------------------------------------------------

  function selected() {
    return cards().filter(function (card) {
      var box = card.querySelector(".mod-select");
      return box && box.checked;
    });
  }

  function updateCount() {
    var list = selected();
    cards().forEach(function (card) {
      var box = card.querySelector(".mod-select");
      card.classList.toggle("is-selected", Boolean(box && box.checked));
    });
    selectionCount.textContent = list.length + " " + t("selected");
  }

  function toggleSelect(card) {
    var box = card.querySelector(".mod-select");
    if (!box) return;
    box.checked = !box.checked;
    updateCount();
  }

  function bulk(action, reason) {
    var list = selected();
    if (!list.length) { say(t("none-selected")); return; }
    var ids = list.map(function (card) { return Number(card.getAttribute("data-id")); });
    api("/submissions/bulk", { ids: ids, action: action, reason: reason || "" }).then(function (data) {
      var status = action === "approve" ? "approved" : "rejected";
      data.done.forEach(function (id) {
        var card = document.getElementById("card-" + id);
        if (card) {
          setStatus(card, status);
          card.querySelector(".mod-select").checked = false;
          if (action === "reject") history.push({ id: String(id), action: "reject" });
        }
      });
      data.first_approvals.forEach(function (id) {
        var card = document.getElementById("card-" + id);
        if (card) { card.classList.add("is-first-approved"); card.querySelector(".mod-select").checked = false; }
      });
      updateCount();
      var message = t("bulk-done") + " " + (data.done.length + data.first_approvals.length);
      var conflicts = Object.keys(data.conflicts || {});
      if (conflicts.length) message += ". " + t("conflicts") + " #" + conflicts.join(", #");
      say(message);
    }, fail);
  }

  document.querySelectorAll(".mod-select").forEach(function (box) {
    box.addEventListener("change", updateCount);
  });
  document.getElementById("bulk-form").addEventListener("submit", function (event) {
    var action = event.submitter ? event.submitter.value : "approve";
    event.preventDefault();
    if (action === "reject") askReason(function (reason) { bulk("reject", reason); });
    else bulk("approve");
  });
  // Card buttons use the same API when the script runs (the forms stay as a fallback).
  document.querySelectorAll(".mod-action-form").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var card = form.closest(".mod-card");
      focusCard(cards().indexOf(card));
      var action = event.submitter ? event.submitter.getAttribute("data-action") : "approve";
      if (action === "approve") approve(card);
      else if (action === "reject") reject(card);
      else if (action === "undo") {
        api("/submissions/" + card.getAttribute("data-id") + "/undo").then(function (data) { setStatus(card, data.status); }, fail);
      } else if (action === "remove") takeDown(card);
      else pin(card);
    });
  });
  document.querySelectorAll("[data-open-help]").forEach(function (button) {
    button.addEventListener("click", function () { helpDialog.showModal(); });
  });
  cards().forEach(function (card, index) {
    card.addEventListener("click", function (event) {
      if (event.target.closest("a, button, input, label")) return;
      focusCard(index);
    });
  });

  // --- keyboard -------------------------------------------------------------------------------

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (document.querySelector("dialog[open]")) return;
    var target = event.target;
    if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT" || target.isContentEditable)) return;
    var card = currentCard();
    var handled = true;
    switch (event.key) {
      case "j": focusCard(current + 1); break;
      case "k": focusCard(current - 1); break;
      case "a": if (card && card.getAttribute("data-status") === "pending") approve(card); break;
      case "r": if (card && card.getAttribute("data-status") === "pending") reject(card); break;
      case "e": if (card) edit(card); break;
      case "u": undo(); break;
      case "x": if (card) toggleSelect(card); break;
      case "A": bulk("approve"); break;
      case "R": if (selected().length) askReason(function (reason) { bulk("reject", reason); }); else say(t("none-selected")); break;
      case "o": if (card) rotate(card); break;
      case "p": if (card) pin(card); break;
      case "t": if (card) takeDown(card); break;
      case "n": var next = document.getElementById("next-page"); if (next) window.location.assign(next.href); else say(t("end")); break;
      case "?": helpDialog.showModal(); break;
      default: handled = false;
    }
    if (handled) event.preventDefault();
  });

  // Keep the items on screen reserved for this moderator while the page stays open.
  window.setInterval(function () {
    if (document.hidden) return;
    var ids = cards().filter(function (card) { return card.getAttribute("data-status") === "pending"; })
      .map(function (card) { return Number(card.getAttribute("data-id")); });
    if (ids.length) api("/moderation/claims", { ids: ids }).catch(function () {});
  }, 120000);

  updateCount();
  if (cards().length) focusCard(0);
})();
