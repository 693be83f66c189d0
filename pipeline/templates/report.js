/* newsbeam report: the search box and sortable headers of each "articles behind this chart" table.
   Inline, no library and no network: the page works offline. */
(function () {
  "use strict";
  function norm(s) { return (s || "").toLocaleLowerCase(); }

  function searchable(input) {
    var table = document.getElementById(input.getAttribute("data-table"));
    var count = document.getElementById(input.getAttribute("data-table") + "-count");
    var rows = Array.prototype.slice.call(table.tBodies[0].rows).filter(function (r) {
      return !r.classList.contains("none");
    });
    rows.forEach(function (r) { r.setAttribute("data-text", norm(r.textContent)); });
    function apply() {
      var terms = norm(input.value).split(/\s+/).filter(Boolean);
      var shown = 0;
      rows.forEach(function (r) {
        var text = r.getAttribute("data-text");
        var hit = terms.every(function (t) { return text.indexOf(t) >= 0; });
        r.hidden = !hit;
        if (hit) { shown += 1; }
      });
      count.textContent = shown + " of " + rows.length + (rows.length === 1 ? " row" : " rows");
      table.setAttribute("data-shown", String(shown));
    }
    input.addEventListener("input", apply);
    apply();
  }

  function sortable(th) {
    th.addEventListener("click", function () {
      var table = th.closest("table");
      var body = table.tBodies[0];
      var col = Number(th.getAttribute("data-col"));
      var asc = th.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (c) { c.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var rows = Array.prototype.slice.call(body.rows).filter(function (r) { return !r.classList.contains("none"); });
      rows.sort(function (a, b) {
        var x = a.cells[col].textContent, y = b.cells[col].textContent;
        var nx = parseFloat(x), ny = parseFloat(y);
        var d = (!isNaN(nx) && !isNaN(ny) && String(nx) === x.trim() && String(ny) === y.trim())
          ? nx - ny : x.localeCompare(y);
        return asc ? d : -d;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("input.drill-search"), searchable);
  Array.prototype.forEach.call(document.querySelectorAll("table.drill-table th[data-col]"), sortable);
  document.documentElement.setAttribute("data-report-ready", "1");
})();
