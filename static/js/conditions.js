// Hides and shows the parts of a form whose conditions read the answers, as the participant
// types. The server judges them (POST <form action>/conditions), with the same code that
// judges the page when it is sent. Without this script every such part stays visible and
// the server applies the conditions when the page is sent.
(function () {
  "use strict";
  var form = document.querySelector("form[data-conditions]");
  if (!form || !window.fetch || !window.FormData || !window.URLSearchParams) {
    return;
  }
  var parts = form.querySelectorAll("[data-condition]");
  if (!parts.length) {
    return;
  }
  var timer = null;
  var latest = null;

  function values() {
    var data = new URLSearchParams();
    new FormData(form).forEach(function (value, name) {
      if (typeof value === "string" && name !== "action") {
        data.append(name, value);
      }
    });
    return data;
  }

  function apply(hidden) {
    var gone = {};
    hidden.forEach(function (uid) {
      gone[uid] = true;
    });
    Array.prototype.forEach.call(parts, function (part) {
      part.hidden = gone[part.getAttribute("data-condition")] === true;
    });
  }

  function ask() {
    var request = fetch(form.getAttribute("action") + "/conditions", {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      body: values()
    });
    latest = request;
    request
      .then(function (response) {
        return response.ok ? response.json() : null;
      })
      .then(function (body) {
        // Only the answer to the newest question counts.
        if (body && request === latest) {
          apply(body.hidden);
        }
      })
      .catch(function () {});
  }

  function schedule() {
    window.clearTimeout(timer);
    timer = window.setTimeout(ask, 250);
  }

  form.addEventListener("input", schedule);
  form.addEventListener("change", schedule);
  ask();
})();
