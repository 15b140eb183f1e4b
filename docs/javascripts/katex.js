// Typeset math with the KaTeX copy served by this site (hooks/assets.py), loaded only on
// pages that have math: KaTeX's script is about 270 KB, and most pages' weight otherwise.
//
// pymdownx.arithmatex (generic: true) leaves \( … \) and \[ … \] inside
// elements with the class "arithmatex"; notebook pages (mkdocs-jupyter) keep
// $ … $ and $$ … $$ in their rendered Markdown cells. Material's document$
// emits on every page load, including instant navigation, so subscribe to it.
// When typesetting is over, <html data-math="done"> (or "none" on a page without math):
// the browser tests wait for it before looking for KaTeX errors. window.rnnTypesetMath is the
// same typesetting for any element (it returns a promise): the tests run every page's math through it.
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
  // this script is <site>/javascripts/katex.js; KaTeX is <site>/assets/vendor/katex/
  var here = document.currentScript && document.currentScript.src;
  var VENDOR = here ? new URL("../assets/vendor/katex/", here).href : "assets/vendor/katex/";
  var loading = null;

  function load(src) {
    return new Promise(function (resolve, reject) {
      var script = document.createElement("script");
      script.src = VENDOR + src;
      script.onload = resolve;
      script.onerror = function () { reject(new Error("could not load " + script.src)); };
      document.head.appendChild(script);
    });
  }

  function katex() {
    if (!loading) {
      loading = load("katex.min.js").then(function () { return load("contrib/auto-render.min.js"); });
    }
    return loading;
  }

  function typeset(root) {
    var math = root.querySelectorAll(".arithmatex");
    var cells = Array.prototype.filter.call(
      root.querySelectorAll(".jupyter-wrapper .jp-RenderedMarkdown"),
      function (el) { return /\$|\\\(|\\\[/.test(el.textContent); }
    );
    if (!math.length && !cells.length) {
      document.documentElement.dataset.math = "none";
      return Promise.resolve();
    }
    document.documentElement.dataset.math = "loading";
    return katex().then(function () {
      math.forEach(function (el) {
        renderMathInElement(el, { delimiters: ARITHMATEX, throwOnError: false });
      });
      cells.forEach(function (el) {
        renderMathInElement(el, { delimiters: NOTEBOOK, throwOnError: false });
      });
      document.documentElement.dataset.math = "done";
    }, function (error) {
      console.error(error.message + ": math stays as source.");
      document.documentElement.dataset.math = "failed";
    });
  }

  window.rnnTypesetMath = typeset;

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
