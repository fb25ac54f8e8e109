// Puts the chosen canned answer into the reply box as soon as it is chosen, without the round
// trip the "Use this answer" button makes without JavaScript. What the employee typed
// themselves is kept: the answer then goes after it.
(function () {
  "use strict";
  var select = document.querySelector("select[data-canned-for]");
  if (!select) {
    return;
  }
  var box = document.getElementById(select.getAttribute("data-canned-for"));
  var button = document.querySelector("[data-canned-use]");
  if (!box) {
    return;
  }
  var filled = null;

  function fill() {
    var option = select.options[select.selectedIndex];
    var text = option ? option.getAttribute("data-text") : null;
    if (text === null) {
      return;
    }
    var current = box.value;
    if (current.trim() === "" || current === filled) {
      box.value = text;
    } else {
      box.value = current.replace(/\s+$/, "") + "\n\n" + text;
    }
    filled = box.value;
  }

  select.addEventListener("change", fill);
  if (button) {
    button.addEventListener("click", function (event) {
      event.preventDefault();
      fill();
      box.focus();
    });
  }
})();
