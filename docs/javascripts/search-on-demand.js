// Fetch the search index when the reader first opens search, not with every page.
//
// Material's search worker asks for search/search_index.json (about 0.5 MB per language) as
// soon as a page loads, so every page would weigh that much more whether or not anyone
// searches. This script runs before Material's bundle (overrides/main.html, extrahead) and
// holds back that one request until the search box gets focus or the search button is
// pressed (the keyboard shortcuts "/", "s" and "f" focus the box too), or at once when the
// address carries a query (?q=..., Material's shared searches). Every other request is
// untouched; the browser's cache serves the index on later pages.
(() => {
  const INDEX = /\/search\/search_index\.json$/;
  const { open, send } = XMLHttpRequest.prototype;
  const waiting = [];
  let wanted = false;

  const want = () => {
    if (wanted) return;
    wanted = true;
    document.documentElement.dataset.searchIndex = "requested";
    waiting.splice(0).forEach((go) => go());
  };

  XMLHttpRequest.prototype.open = function (method, url, ...rest) {
    this.searchIndex = INDEX.test(new URL(String(url), location.href).pathname);
    return open.call(this, method, url, ...rest);
  };
  XMLHttpRequest.prototype.send = function (...args) {
    if (this.searchIndex && !wanted) {
      waiting.push(() => send.apply(this, args));
      return undefined;
    }
    return send.apply(this, args);
  };

  document.addEventListener("focusin", (event) => {
    if (event.target instanceof Element && event.target.matches("input.md-search__input")) want();
  });
  document.addEventListener("click", (event) => {
    if (event.target instanceof Element && event.target.closest('label[for="__search"], .md-search')) want();
  }, true);
  if (new URLSearchParams(location.search).has("q")) want();
})();
