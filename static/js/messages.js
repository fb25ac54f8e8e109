// The Messages area with JavaScript: answers from the case's questions and answers offered
// while a question is typed, and the bank's new messages read out when they arrive on an
// open thread. The pages work without this script.
(function () {
  "use strict";

  var DEBOUNCE_MS = 400;

  function suggestionsWhileTyping(form) {
    var textarea = form.querySelector("textarea[name=text]");
    var region = form.querySelector("[data-faq-suggestions]");
    var seen = form.querySelector("[data-faq-seen]");
    if (!textarea || !region || !seen || !window.fetch) {
      return;
    }
    var url = form.getAttribute("data-faq-url");
    var timer = null;
    var asked = "";
    var latest = 0;

    function render(suggestions) {
      while (region.firstChild) {
        region.removeChild(region.firstChild);
      }
      if (!suggestions.length) {
        return;
      }
      var title = document.createElement("p");
      title.className = "faq-suggestions__title";
      var strong = document.createElement("strong");
      strong.textContent = region.getAttribute("data-title");
      title.appendChild(strong);
      region.appendChild(title);
      var list = document.createElement("ul");
      list.className = "faq-suggestions__list";
      suggestions.forEach(function (suggestion) {
        var item = document.createElement("li");
        var details = document.createElement("details");
        var summary = document.createElement("summary");
        summary.textContent = suggestion.question;
        var answer = document.createElement("p");
        answer.textContent = suggestion.answer;
        details.appendChild(summary);
        details.appendChild(answer);
        item.appendChild(details);
        // Sends this form (question, step, token) to the FAQ route instead of the bank.
        var button = document.createElement("button");
        button.type = "submit";
        button.className = "secondary";
        button.name = "entry";
        button.value = String(suggestion.entry);
        button.setAttribute("formaction", "/messages/faq");
        button.textContent = region.getAttribute("data-answers-text");
        var named = document.createElement("span");
        named.className = "visually-hidden";
        named.textContent = ": " + suggestion.question;
        button.appendChild(named);
        item.appendChild(button);
        list.appendChild(item);
      });
      region.appendChild(list);
      // The answers were offered on this page: sending now goes straight to the bank.
      seen.value = "1";
    }

    function ask() {
      var query = textarea.value;
      if (query === asked) {
        return;
      }
      asked = query;
      var mine = ++latest;
      fetch(url + "?typing=1&q=" + encodeURIComponent(query), {
        credentials: "same-origin",
        headers: { Accept: "application/json" }
      })
        .then(function (response) {
          return response.ok ? response.json() : null;
        })
        .then(function (body) {
          // An older answer arriving late must not replace a newer one.
          if (body && mine === latest) {
            render(body.suggestions || []);
          }
        })
        .catch(function () {});
    }

    textarea.addEventListener("input", function () {
      if (timer) {
        window.clearTimeout(timer);
      }
      timer = window.setTimeout(ask, DEBOUNCE_MS);
    });
  }

  function announceArrivals() {
    var announcer = document.querySelector("[data-message-announcer]");
    if (!announcer) {
      return;
    }
    var known = {};
    function ids() {
      return document.querySelectorAll("[data-messages] [data-message-id]");
    }
    ids().forEach(function (item) {
      known[item.getAttribute("data-message-id")] = true;
    });
    document.addEventListener("panel:live-refreshed", function () {
      var said = [];
      ids().forEach(function (item) {
        var id = item.getAttribute("data-message-id");
        if (known[id]) {
          return;
        }
        known[id] = true;
        var intro = item.getAttribute("data-announce");
        var text = item.querySelector(".message__text");
        if (intro && text) {
          said.push(intro + ": " + text.textContent.trim());
        }
      });
      if (said.length) {
        announcer.textContent = said.join(" ");
      }
    });
  }

  document.querySelectorAll("form[data-faq-form]").forEach(suggestionsWhileTyping);
  announceArrivals();
})();
