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
  var source = new EventSource(document.body.getAttribute("data-live-events") || "/events/");
  var pending = false;
  // A change announced while a refresh is on its way may have come after the page was read:
  // one more refresh follows, or that change would stay unseen.
  var again = false;

  function settled() {
    pending = false;
    if (again) {
      again = false;
      refresh();
    }
  }

  function refresh() {
    if (pending) {
      again = true;
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
        if (!html) {
          settled();
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
        // Other scripts (messages.js) act on what arrived: announce it, for one.
        document.dispatchEvent(new CustomEvent("panel:live-refreshed"));
        settled();
      })
      .catch(settled);
  }

  source.addEventListener("case-update", refresh);
  source.addEventListener("session-ended", function () {
    source.close();
  });
})();
