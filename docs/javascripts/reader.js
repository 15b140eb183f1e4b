// Small reading aids (issue 14).
//
// 1. The copy button of an interactive-session example (">>> " / "... " prompts,
//    followed by the printed output) copies only the code, without prompts or
//    output, so that the copied text runs as Python. Material's clipboard copies
//    the `data-copy` attribute of the nearest element that has one, when present.
// 2. The language switcher keeps the section the reader is at: the link to the
//    other language gets the page's #anchor (headings have the same ids in both
//    languages) when it is followed.
(function () {
  "use strict";

  var PROMPT = /^(>>>|\.\.\.)( |$)/;

  function sessionCode(text) {
    var lines = text.replace(/\n$/, "").split("\n");
    if (!lines.length || !/^>>>( |$)/.test(lines[0])) return null;
    var code = [];
    lines.forEach(function (line) {
      if (PROMPT.test(line)) code.push(line.replace(PROMPT, ""));
    });
    return code.join("\n");
  }

  function markSessions(root) {
    root.querySelectorAll(".highlight pre > code").forEach(function (code) {
      if (code.hasAttribute("data-copy")) return;
      var text = sessionCode(code.textContent);
      if (text !== null) code.setAttribute("data-copy", text);
    });
  }

  function keepAnchor(event) {
    var link = event.target instanceof Element && event.target.closest("a[hreflang]");
    if (!link || !location.hash) return;
    var url = new URL(link.href, location.href);
    url.hash = location.hash;
    link.href = url.href;
    // Material's own handler (on the body) would go to the other language's page
    // without the anchor: follow a plain click here instead.
    if (event.type === "click" && event.button === 0 && !link.target &&
        !(event.metaKey || event.ctrlKey || event.shiftKey || event.altKey)) {
      event.preventDefault();
      event.stopPropagation();
      location.assign(url.href);
    }
  }

  // capture: before Material's own click handler on the body reads the link
  document.addEventListener("click", keepAnchor, true);
  document.addEventListener("auxclick", keepAnchor, true);
  document.addEventListener("contextmenu", keepAnchor, true);

  if (typeof document$ !== "undefined") {
    document$.subscribe(function () { markSessions(document); });
  } else {
    document.addEventListener("DOMContentLoaded", function () { markSessions(document); });
  }
})();
