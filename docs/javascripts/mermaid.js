// Load the site's own mermaid (hooks/assets.py) only on pages that draw a diagram.
//
// Material draws every ```mermaid fence itself: on DOMContentLoaded it calls
// mermaid.initialize() once and mermaid.render() per diagram, and loads mermaid
// from a CDN when no global `mermaid` exists. This file defines a small stand-in
// global instead of the 5.5 MB library: Material never calls it on a page without
// a diagram, and the first render() call fetches the vendored copy (a plain script
// from this site, never another origin), then hands over to it.
//
// The stand-in also sets what makes diagrams readable: they keep their natural
// size (useMaxWidth: false, 16 px text) and the page scrolls a wide one sideways
// (docs/stylesheets/extra.css) instead of shrinking its text to a few pixels.
(function () {
  "use strict";

  if (typeof window.mermaid !== "undefined") return;

  var script = document.currentScript;
  var SRC = new URL("../assets/vendor/mermaid/mermaid.min.js", script.src).href;
  var NATURAL_SIZE = { useMaxWidth: false };
  var READABLE = {
    fontSize: 16,
    flowchart: NATURAL_SIZE,
    block: NATURAL_SIZE,
    sequence: NATURAL_SIZE,
    class: NATURAL_SIZE,
    state: NATURAL_SIZE,
    er: NATURAL_SIZE,
    gantt: NATURAL_SIZE,
    pie: NATURAL_SIZE,
    journey: NATURAL_SIZE,
    timeline: NATURAL_SIZE,
    mindmap: NATURAL_SIZE,
    xyChart: NATURAL_SIZE,
  };

  var options = {};
  var loading = null;

  function merge(target, source) {
    Object.keys(source).forEach(function (key) {
      var value = source[key];
      if (value && typeof value === "object" && !Array.isArray(value)) {
        target[key] = merge(Object.assign({}, target[key] || {}), value);
      } else {
        target[key] = value;
      }
    });
    return target;
  }

  function load() {
    if (loading) return loading;
    loading = new Promise(function (resolve, reject) {
      var tag = document.createElement("script");
      tag.src = SRC;
      tag.onload = function () {
        var real = window.mermaid;
        if (!real || real === stub || typeof real.render !== "function") {
          reject(new Error("mermaid.js: " + SRC + " did not define mermaid"));
          return;
        }
        real.initialize(merge(merge({}, options), READABLE));
        resolve(real);
      };
      tag.onerror = function () {
        reject(new Error("mermaid.js: could not load " + SRC));
      };
      document.head.appendChild(tag);
    });
    return loading;
  }

  // Text alternative: every diagram names itself with `accTitle: …` and
  // `accDescr: …` lines (in the page's language). Not every diagram type accepts
  // them (block-beta does not), so they are taken out here and written into the
  // SVG as <title> and <desc>, which aria-labelledby / aria-describedby point at.
  var ACC = /^[ \t]*(accTitle|accDescr)[ \t]*:[ \t]*(.*)$/;

  function takeAccessibility(text) {
    var found = { accTitle: "", accDescr: "" };
    var kept = text.split("\n").filter(function (line) {
      var match = ACC.exec(line);
      if (match) found[match[1]] = match[2].trim();
      return !match;
    });
    return { text: kept.join("\n"), title: found.accTitle, descr: found.accDescr };
  }

  function escapeXml(text) {
    return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }

  function describe(svg, id, acc) {
    if (!acc.title && !acc.descr) return svg;
    return svg.replace(/<svg\b[^>]*>/, function (tag) {
      tag = tag.replace(/\s(?:aria-labelledby|aria-describedby|role)="[^"]*"/g, "");
      var ids = [];
      var inner = "";
      if (acc.title) {
        ids.push(' aria-labelledby="' + id + '-acc-title"');
        inner += '<title id="' + id + '-acc-title">' + escapeXml(acc.title) + "</title>";
      }
      if (acc.descr) {
        ids.push(' aria-describedby="' + id + '-acc-descr"');
        inner += '<desc id="' + id + '-acc-descr">' + escapeXml(acc.descr) + "</desc>";
      }
      return tag.replace(/\/?>$/, ' role="img"' + ids.join("") + ">") + inner;
    });
  }

  var stub = {
    initialize: function (config) {
      merge(options, config || {});
    },
    render: function (id, text) {
      var acc = takeAccessibility(text);
      return load().then(function (real) {
        return real.render(id, acc.text);
      }).then(function (result) {
        return Object.assign({}, result, { svg: describe(result.svg, id, acc) });
      });
    },
  };
  window.mermaid = stub;
})();
