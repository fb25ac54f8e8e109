// Starts Swagger UI on the API documentation page (bff/api_docs.py); no inline script, so
// the page keeps the panel's content security policy.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  if (!root || typeof window.SwaggerUIBundle !== "function") {
    return;
  }
  window.SwaggerUIBundle({
    url: root.getAttribute("data-spec-url"),
    domNode: root,
    deepLinking: true,
    // The base layout: the standalone one adds a top bar whose logo carries an inline style
    // the CSP refuses.
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
})();
