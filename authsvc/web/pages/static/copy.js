// Copy buttons: copy their data-copy text (a docker command) to the clipboard.
"use strict";
document.addEventListener("click", function (event) {
  var button = event.target.closest("button.copy");
  if (!button) { return; }
  var text = button.getAttribute("data-copy");
  function done(label) {
    button.textContent = label;
    window.setTimeout(function () { button.textContent = "Copy"; }, 2000);
  }
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(function () { done("Copied"); },
      function () { done("Select and copy"); });
  } else {
    var code = button.parentNode.querySelector("code");
    if (code) { window.getSelection().selectAllChildren(code); }
    done("Press Ctrl+C");
  }
});
