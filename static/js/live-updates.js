// Refreshes the parts of a page marked data-live-region when the case changes elsewhere
// (another participant acts, the bank decides). Pages are complete without this script.
(function () {
  "use strict";
  if (!window.EventSource || !window.fetch || !window.DOMParser) {
    return;
  }
  var regions = document.querySelectorAll("[data-live-region]");
  if (!regions.length) {
    return;
  }
  var source = new EventSource("/events/");
  var pending = false;

  function refresh() {
    if (pending) {
      return;
    }
    pending = true;
    // The header tells the server this is no activity of the person: it must not keep the
    // session alive.
    fetch(window.location.href, {
      credentials: "same-origin",
      headers: { Accept: "text/html", "X-Panel-Background": "1" }
    })
      .then(function (response) {
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        pending = false;
        if (!html) {
          return;
        }
        var fresh = new DOMParser().parseFromString(html, "text/html");
        regions.forEach(function (region) {
          var name = region.getAttribute("data-live-region");
          var replacement = fresh.querySelector('[data-live-region="' + name + '"]');
          // Never replace what the person is working in.
          if (replacement && !region.contains(document.activeElement)) {
            region.innerHTML = replacement.innerHTML;
          }
        });
      })
      .catch(function () {
        pending = false;
      });
  }

  source.addEventListener("case-update", refresh);
  source.addEventListener("session-ended", function () {
    source.close();
  });
})();
