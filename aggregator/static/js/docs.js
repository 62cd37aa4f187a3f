// Starts Swagger UI on /docs from the vendored bundle (no CDN, no inline script).
window.addEventListener("DOMContentLoaded", function () {
  window.SwaggerUIBundle({
    url: document.getElementById("swagger-ui").dataset.openapi,
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,  // never ask an outside validator
  });
});
