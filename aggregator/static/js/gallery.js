// Paint each photo's mat in its average colour while it loads (CSP forbids style attributes,
// but setting a property from a script file is allowed).
(function () {
  "use strict";
  var pattern = /^#[0-9a-fA-F]{6}$/;
  document.querySelectorAll("img[data-color]").forEach(function (img) {
    var color = img.getAttribute("data-color");
    if (pattern.test(color)) {
      img.style.backgroundColor = color;
    }
  });
})();
