// Typeset math with the KaTeX copy served by this site (hooks/assets.py).
//
// pymdownx.arithmatex (generic: true) leaves \( … \) and \[ … \] inside
// elements with the class "arithmatex"; notebook pages (mkdocs-jupyter) keep
// $ … $ and $$ … $$ in their rendered Markdown cells. Material's document$
// emits on every page load, including instant navigation, so subscribe to it.
(function () {
  "use strict";

  var ARITHMATEX = [
    { left: "\\(", right: "\\)", display: false },
    { left: "\\[", right: "\\]", display: true },
  ];
  var NOTEBOOK = [
    { left: "$$", right: "$$", display: true },
    { left: "$", right: "$", display: false },
    { left: "\\(", right: "\\)", display: false },
    { left: "\\[", right: "\\]", display: true },
  ];

  function typeset(root) {
    if (typeof renderMathInElement !== "function") {
      console.error("KaTeX auto-render is not loaded: math stays as source.");
      return;
    }
    root.querySelectorAll(".arithmatex").forEach(function (el) {
      renderMathInElement(el, { delimiters: ARITHMATEX, throwOnError: false });
    });
    root
      .querySelectorAll(".jupyter-wrapper .jp-RenderedMarkdown")
      .forEach(function (el) {
        renderMathInElement(el, { delimiters: NOTEBOOK, throwOnError: false });
      });
  }

  if (typeof document$ !== "undefined") {
    document$.subscribe(function (doc) {
      typeset(doc.body || document.body);
    });
  } else {
    document.addEventListener("DOMContentLoaded", function () {
      typeset(document.body);
    });
  }
})();
