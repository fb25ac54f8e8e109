// Shows how far an upload has got. Without this script the same form posts normally.
(function () {
  "use strict";
  if (!window.XMLHttpRequest || !window.FormData) {
    return;
  }
  document.querySelectorAll("form[data-upload-progress]").forEach(function (form) {
    var progress = form.querySelector("progress.upload-progress");
    var status = form.querySelector("[data-upload-status]");
    form.addEventListener("submit", function (event) {
      var hasFiles = Array.prototype.some.call(
        form.querySelectorAll('input[type="file"]'),
        function (input) { return input.files && input.files.length > 0; }
      );
      if (!hasFiles || !progress) {
        return;
      }
      event.preventDefault();
      var data = new FormData(form);
      if (event.submitter && event.submitter.name) {
        data.append(event.submitter.name, event.submitter.value);
      }
      var request = new XMLHttpRequest();
      request.open("POST", form.action);
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
        if (request.responseURL && request.responseURL !== form.action) {
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
