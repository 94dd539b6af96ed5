// Starts Swagger UI on /api/docs from the settings the page carries (no inline script). "Try it out" runs as the
// signed-in user: the session cookie goes along, and unsafe methods get the page's CSRF token.
(function () {
  const settings = JSON.parse(document.getElementById("swagger-settings").textContent);
  const csrfToken = document.body.dataset.csrfToken;
  settings.dom_id = "#swagger-ui";
  settings.presets = [SwaggerUIBundle.presets.apis];
  settings.requestInterceptor = function (request) {
    if (csrfToken && !["GET", "HEAD", "OPTIONS"].includes((request.method || "GET").toUpperCase())) {
      request.headers["X-CSRFToken"] = csrfToken;
    }
    return request;
  };
  SwaggerUIBundle(settings);
})();
