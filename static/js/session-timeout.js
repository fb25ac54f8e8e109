// Warns shortly before the session ends for inactivity, and offers to continue. The server
// enforces the timeout; this only keeps people from losing what they are typing.
(function () {
  "use strict";
  var notice = document.querySelector("[data-session-expires-at]");
  if (!notice || !window.fetch) {
    return;
  }
  var expiresAt = Number(notice.getAttribute("data-session-expires-at")) * 1000;
  var warnBefore = Number(notice.getAttribute("data-session-warning-seconds") || "60") * 1000;
  var warning = null;

  function show() {
    if (warning) {
      return;
    }
    warning = document.createElement("div");
    warning.className = "warning";
    warning.setAttribute("role", "alertdialog");
    warning.setAttribute("aria-live", "assertive");
    var text = document.createElement("p");
    text.textContent = notice.getAttribute("data-session-warning-text") || "";
    var button = document.createElement("button");
    button.type = "button";
    button.textContent = notice.getAttribute("data-session-continue-text") || "Continue";
    button.addEventListener("click", function () {
      fetch(window.location.href, { credentials: "same-origin" }).then(function (response) {
        if (response.ok) {
          expiresAt = Date.now() + Number(notice.getAttribute("data-session-idle-seconds")) * 1000;
          warning.remove();
          warning = null;
        }
      });
    });
    warning.appendChild(text);
    warning.appendChild(button);
    notice.insertAdjacentElement("afterend", warning);
    button.focus();
  }

  window.setInterval(function () {
    if (Date.now() >= expiresAt - warnBefore) {
      show();
    }
  }, 5000);
})();
