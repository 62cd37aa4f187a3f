// "Copy the code" for the embed snippet on the campaign admin page.
(function () {
  "use strict";
  document.querySelectorAll(".embed-copy").forEach(function (button) {
    var area = document.getElementById(button.getAttribute("data-copy-target"));
    var status = button.parentElement.querySelector(".embed-copy-status");
    if (!area) {
      return;
    }
    area.addEventListener("focus", function () { area.select(); });
    button.addEventListener("click", function () {
      area.select();
      var done = function () {
        if (status) { status.textContent = button.getAttribute("data-copied"); }
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(area.value).then(done, function () {
          document.execCommand("copy");
          done();
        });
      } else {
        document.execCommand("copy");
        done();
      }
    });
  });
})();
