// Saves what a participant types as a draft every 30 seconds while the page is open, the
// same way the "Save and continue later" button does. Without this script the button alone
// keeps drafts.
(function () {
  "use strict";
  var form = document.querySelector("form[data-autosave]");
  if (!form || !window.fetch || !window.FormData || !window.URLSearchParams) {
    return;
  }
  var changed = false;
  form.addEventListener("input", function () {
    changed = true;
  });
  form.addEventListener("change", function () {
    changed = true;
  });
  window.setInterval(function () {
    if (!changed) {
      return;
    }
    changed = false;
    // Text only: files go with the "Upload" button, not every half minute.
    var data = new URLSearchParams();
    new FormData(form).forEach(function (value, name) {
      if (typeof value === "string" && name !== "action") {
        data.append(name, value);
      }
    });
    data.set("action", "save");
    fetch(form.getAttribute("action"), {
      method: "POST",
      credentials: "same-origin",
      body: data,
      redirect: "manual"
    }).catch(function () {
      changed = true;
    });
  }, 30000);
})();
