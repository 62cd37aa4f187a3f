/* Upload page enhancements: previews, one request per photo with its own progress bar and
   "Try again", drag and drop. Without this script the form still works as a plain form.
   Every visible text comes from the page (data-msg-* attributes, the item template), so it
   is already in the visitor's language. */
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function setupCopyButtons() {
    document.querySelectorAll(".copy-link").forEach(function (button) {
      if (!navigator.clipboard) return;
      button.hidden = false;
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(button.dataset.copy).then(function () {
          button.textContent = button.dataset.done;
        }, function () { /* clipboard refused: the link stays visible to copy by hand */ });
      });
    });
  }

  function setupForm(form) {
    var input = form.querySelector(".file-input");
    var list = form.querySelector("#photo-list");
    var template = document.getElementById("upload-item-template");
    var status = form.querySelector("#form-status");
    var announcer = form.querySelector("#upload-announcer");
    var dropzone = form.querySelector("#dropzone");
    var csrf = form.querySelector("input[name=csrf_token]").value;
    var maxFiles = parseInt(form.dataset.maxFiles, 10);
    var maxBytes = parseInt(form.dataset.maxBytes, 10);
    var msg = form.dataset;
    var sendWhenReady = false;

    function items() { return Array.prototype.slice.call(list.querySelectorAll(".photo-item")); }
    function count(cls) { return items().filter(function (li) { return li.classList.contains(cls); }).length; }
    function say(text) { status.textContent = text || ""; }

    function setState(li, state, text, retryable) {
      li.classList.remove("is-uploading", "is-done", "is-failed");
      li.classList.add("is-" + state);
      li.querySelector(".photo-status").textContent = text;
      li.querySelector(".retry-button").hidden = !retryable;
      if (state === "failed") li.querySelector(".photo-progress").hidden = true;
      /* One calm announcement per photo for screen readers, not one per percent. */
      if (state !== "uploading") announcer.textContent = li._file ? li._file.name + ": " + text : text;
    }

    function finished() {
      if (count("is-uploading") > 0) return;
      if (count("is-failed") === 0) say("");
      if (sendWhenReady) {
        sendWhenReady = false;
        if (count("is-failed") === 0 && count("is-done") > 0) form.requestSubmit();
        else say(msg.msgFailed);
      }
    }

    function upload(li) {
      var file = li._file;
      var bar = li.querySelector(".photo-progress");
      bar.hidden = false;
      bar.value = 0;
      setState(li, "uploading", msg.msgUploading, false);
      var data = new FormData();
      data.append("photo", file, file.name);
      var xhr = new XMLHttpRequest();
      li._xhr = xhr;
      xhr.open("POST", form.dataset.photoUrl);
      xhr.setRequestHeader("X-CSRF-Token", csrf);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.timeout = 10 * 60 * 1000;
      xhr.upload.onprogress = function (event) {
        if (!event.lengthComputable) return;
        var percent = Math.min(99, Math.floor(event.loaded * 100 / event.total));
        bar.value = percent;
        li.querySelector(".photo-status").textContent = msg.msgProgress.replace("{percent}", percent);
      };
      xhr.onload = function () {
        li._xhr = null;
        var body = null;
        try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
        if (xhr.status === 201 && body && body.id) {
          bar.value = 100;
          accept(li, body);
        } else {
          var message = body && body.error ? body.error.message : msg.msgServer;
          var retryable = xhr.status === 429 || xhr.status === 408 || xhr.status >= 500 || !body;
          setState(li, "failed", message, retryable);
        }
        finished();
      };
      xhr.onerror = xhr.ontimeout = function () {
        li._xhr = null;
        setState(li, "failed", msg.msgNetwork, true);
        finished();
      };
      xhr.send(data);
    }

    function accept(li, body) {
      var hidden = document.createElement("input");
      hidden.type = "hidden";
      hidden.name = "staged";
      hidden.value = body.id;
      li.appendChild(hidden);
      li.querySelector(".alt-input").name = "alt:" + body.id;
      var img = li.querySelector(".photo-preview img");
      if (img.hidden && body.thumb) { img.src = body.thumb; img.hidden = false; }
      setState(li, "done", msg.msgDone, false);
    }

    function wire(li) {
      li.querySelector(".retry-button").addEventListener("click", function () { upload(li); });
      li.querySelector(".remove-button").addEventListener("click", function () {
        if (li._xhr) li._xhr.abort();
        if (li._url) URL.revokeObjectURL(li._url);
        var next = li.nextElementSibling || li.previousElementSibling;
        li.remove();
        if (next) next.querySelector(".remove-button").focus(); else input.focus();
        finished();
      });
    }

    function add(file) {
      if (items().length >= maxFiles) { say(msg.msgTooMany); return; }
      var li = template.content.firstElementChild.cloneNode(true);
      li._file = file;
      li.querySelector(".photo-name").textContent = file.name;
      var img = li.querySelector(".photo-preview img");
      li._url = URL.createObjectURL(file);
      img.onload = function () { img.hidden = false; };
      img.onerror = function () { img.hidden = true; };  /* e.g. HEIC: the server thumb follows */
      img.src = li._url;
      list.appendChild(li);
      wire(li);
      if (file.size > maxBytes) {
        setState(li, "failed", msg.msgTooLarge, false);
        return;
      }
      upload(li);
    }

    function addAll(files) {
      Array.prototype.forEach.call(files, add);
      input.value = "";  /* the photos travel one by one; the form carries only their tokens */
    }

    items().forEach(wire);
    input.addEventListener("change", function () { addAll(input.files); });
    dropzone.querySelector(".drop-hint").hidden = false;
    ["dragenter", "dragover"].forEach(function (name) {
      dropzone.addEventListener(name, function (event) {
        event.preventDefault();
        dropzone.classList.add("is-over");
      });
    });
    ["dragleave", "drop"].forEach(function (name) {
      dropzone.addEventListener(name, function () { dropzone.classList.remove("is-over"); });
    });
    dropzone.addEventListener("drop", function (event) {
      event.preventDefault();
      if (event.dataTransfer && event.dataTransfer.files) addAll(event.dataTransfer.files);
    });

    form.addEventListener("submit", function (event) {
      if (count("is-uploading") > 0) {
        event.preventDefault();
        sendWhenReady = true;
        say(msg.msgWait);
      } else if (count("is-failed") > 0) {
        event.preventDefault();
        say(msg.msgFailed);
      } else if (count("is-done") === 0) {
        event.preventDefault();
        say(msg.msgNeedPhoto);
      } else {
        form.querySelector("#send-button").disabled = true;
        return;
      }
      status.scrollIntoView({ block: "center" });
    });

    window.addEventListener("pageshow", function () {
      form.querySelector("#send-button").disabled = false;  /* back from the receipt */
    });
    var problems = document.getElementById("form-problems");
    if (problems) problems.focus();
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupCopyButtons();
    var form = document.getElementById("upload-form");
    if (form) setupForm(form);
  });
})();
