// Shows how far an upload has got. Without this script the same form posts normally.
(function () {
  "use strict";
  if (!window.XMLHttpRequest || !window.FormData) {
    return;
  }
  document.querySelectorAll("form[data-upload-progress]").forEach(function (form) {
    var progress = form.querySelector("progress.upload-progress");
    var status = form.querySelector("[data-upload-status]");
    // Not form.action: the form's own buttons are named "action" and would shadow it.
    var target = new URL(form.getAttribute("action"), window.location.href).href;
    form.addEventListener("submit", function (event) {
      var hasFiles = Array.prototype.some.call(
        form.querySelectorAll('input[type="file"]'),
        function (input) { return input.files && input.files.length > 0; }
      );
      var elsewhere = event.submitter && event.submitter.getAttribute("formaction");
      if (!hasFiles || !progress || elsewhere) {
        return;
      }
      event.preventDefault();
      var data = new FormData(form);
      if (event.submitter && event.submitter.name) {
        data.append(event.submitter.name, event.submitter.value);
      }
      var request = new XMLHttpRequest();
      request.open("POST", target);
      request.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) {
          progress.hidden = false;
          progress.max = e.total;
          progress.value = e.loaded;
          if (status) {
            status.textContent = status.getAttribute("data-upload-status").replace("%", String(Math.round((e.loaded / e.total) * 100)));
          }
        }
      });
      request.addEventListener("load", function () {
        if (request.responseURL && request.responseURL !== target) {
          window.location.assign(request.responseURL);
          return;
        }
        document.open();
        document.write(request.responseText);
        document.close();
      });
      request.addEventListener("error", function () {
        form.submit();
      });
      request.send(data);
    });
  });
})();
