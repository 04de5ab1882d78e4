(function () {
  "use strict";
  // Review text reaches the page only through textContent: never innerHTML with data.
  var island = document.getElementById("rows-data");
  var body = document.getElementById("rows-body");
  if (!island || !body) { return; }
  var data = JSON.parse(island.textContent);
  // Each row: [row, id, text, sentiment 1/0/null, score, status index, label 1/0/null, cut 0/1]
  var rows = data.rows;
  var statuses = data.statuses;
  var hasId = data.has_id;
  var hasLabel = data.has_label;
  var previewChars = data.preview_chars;
  var SENT = { 1: "positive", 0: "negative" };
  var SENT_CSS = { 1: "pos", 0: "neg" };

  var el = function (id) { return document.getElementById(id); };
  var search = el("search");
  var fSentiment = el("filter-sentiment");
  var fStatus = el("filter-status");
  var sortSel = el("sort");
  var sizeSel = el("page-size");
  var prev = el("prev-page");
  var next = el("next-page");
  var pageInfo = el("page-info");
  var matchCount = el("match-count");
  el("controls").hidden = false;
  el("pager").hidden = false;

  var haystack = null;
  var matches = [];
  var page = 0;
  var columns = 5 + (hasId ? 1 : 0) + (hasLabel ? 1 : 0);

  function thousands(n) {
    return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  function readable(text) {
    // Scraped reviews often carry HTML line breaks; show them as line breaks, as text.
    return text.replace(/<br\s*\/?>|[\u2028\u2029]/gi, "\n");
  }

  function preview(text) {
    if (text.length <= previewChars) { return null; }
    var end = previewChars;
    var code = text.charCodeAt(end - 1);
    if (code >= 0xd800 && code <= 0xdbff) { end -= 1; }
    return text.slice(0, end).replace(/\s+$/, "") + "…";
  }

  function buildHaystack() {
    haystack = new Array(rows.length);
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i];
      haystack[i] = (r[1] === null ? "" : String(r[1]).toLowerCase() + "\u0000") + r[2].toLowerCase();
    }
  }

  function compute() {
    var query = search.value.trim().toLowerCase();
    var sentiment = fSentiment.value;
    var status = fStatus.value;
    var statusIndex = status === "all" ? -1 : statuses.indexOf(status);
    var wantSent = sentiment === "positive" ? 1 : sentiment === "negative" ? 0 : null;
    if (query && haystack === null) { buildHaystack(); }
    var out = [];
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i];
      if (sentiment === "none") {
        if (r[3] !== null) { continue; }
      } else if (sentiment !== "all" && r[3] !== wantSent) {
        continue;
      }
      if (statusIndex !== -1 && r[5] !== statusIndex) { continue; }
      if (status !== "all" && statusIndex === -1) { continue; }
      if (query && haystack[i].indexOf(query) === -1) { continue; }
      out.push(i);
    }
    var order = sortSel.value;
    if (order !== "row") {
      var sign = order === "score-asc" ? 1 : -1;
      out.sort(function (a, b) {
        var sa = rows[a][4];
        var sb = rows[b][4];
        // Unscored rows go last whichever way the scores are sorted.
        if (sa === null || sb === null) {
          if (sa === sb) { return a - b; }
          return sa === null ? 1 : -1;
        }
        return sa === sb ? a - b : sign * (sa - sb);
      });
    }
    matches = out;
    matchCount.dataset.query = query;
    page = 0;
    render();
  }

  function cell(tr, className, text) {
    var td = document.createElement("td");
    if (className) { td.className = className; }
    if (text !== undefined) { td.textContent = text; }
    tr.appendChild(td);
    return td;
  }

  function textCell(tr, r) {
    var td = cell(tr, "col-text");
    var full = readable(r[2]);
    var short = preview(full);
    var span = document.createElement("span");
    span.className = "review-text";
    span.textContent = short === null ? full : short;
    if (full === "") {
      span.className = "review-text empty-text";
      span.textContent = "(empty)";
    }
    td.appendChild(span);
    if (short !== null) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "more";
      button.textContent = "more";
      button.setAttribute("aria-expanded", "false");
      td.appendChild(button);
    }
    if (r[7]) {
      var note = document.createElement("span");
      note.className = "cut-note";
      note.textContent = " (cut for this page; the predictions file has the full text)";
      td.appendChild(note);
    }
  }

  function scoreCell(tr, r) {
    var td = cell(tr, "num score");
    if (r[4] === null) {
      td.textContent = "–";
      return;
    }
    var bar = document.createElement("span");
    bar.className = "bar";
    bar.setAttribute("aria-hidden", "true");
    var fill = document.createElement("span");
    fill.className = "fill " + (SENT_CSS[r[3]] || "none");
    fill.style.width = (Math.max(0, Math.min(1, r[4])) * 100).toFixed(1) + "%";
    bar.appendChild(fill);
    td.appendChild(bar);
    var num = document.createElement("span");
    num.className = "score-num";
    num.textContent = r[4].toFixed(3);
    td.appendChild(num);
  }

  function render() {
    var size = parseInt(sizeSel.value, 10) || 50;
    var pages = Math.max(1, Math.ceil(matches.length / size));
    if (page >= pages) { page = pages - 1; }
    if (page < 0) { page = 0; }
    var start = page * size;
    var stop = Math.min(matches.length, start + size);
    var frag = document.createDocumentFragment();
    for (var k = start; k < stop; k++) {
      var i = matches[k];
      var r = rows[i];
      var tr = document.createElement("tr");
      tr.dataset.row = String(r[0]);
      tr.dataset.index = String(i);
      tr.dataset.sentiment = r[3] === null ? "none" : SENT[r[3]];
      tr.dataset.status = statuses[r[5]];
      if (r[4] !== null) { tr.dataset.score = String(r[4]); }
      cell(tr, "num", thousands(r[0]));
      if (hasId) { cell(tr, "col-id", r[1] === null ? "" : String(r[1])); }
      textCell(tr, r);
      var sent = cell(tr, "col-sentiment");
      var tag = document.createElement("span");
      tag.className = "tag " + (SENT_CSS[r[3]] || "none");
      tag.textContent = r[3] === null ? "not scored" : SENT[r[3]];
      sent.appendChild(tag);
      scoreCell(tr, r);
      cell(tr, statuses[r[5]] === "ok" ? "col-status" : "col-status warn", statuses[r[5]]);
      if (hasLabel) {
        var lab = cell(tr, "col-label", r[6] === null ? "" : SENT[r[6]]);
        if (r[6] !== null && r[3] !== null && r[6] !== r[3]) {
          var miss = document.createElement("span");
          miss.className = "miss";
          miss.textContent = " ✗ wrong";
          miss.title = "the prediction differs from this label";
          lab.appendChild(miss);
        }
      }
      frag.appendChild(tr);
    }
    if (stop === start) {
      var empty = document.createElement("tr");
      empty.className = "empty";
      var td = cell(empty, "", rows.length ? "No reviews match." : "No rows to show.");
      td.colSpan = columns;
      frag.appendChild(empty);
    }
    body.replaceChildren(frag);
    pageInfo.textContent = "page " + thousands(page + 1) + " of " + thousands(pages);
    pageInfo.dataset.page = String(page + 1);
    pageInfo.dataset.pages = String(pages);
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
    var filtered = matches.length !== rows.length;
    matchCount.textContent = filtered
      ? thousands(matches.length) + " of " + thousands(rows.length) + " reviews match"
      : thousands(rows.length) + " reviews";
    matchCount.dataset.count = String(matches.length);
  }

  var timer = null;
  search.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(compute, rows.length > 5000 ? 150 : 30);
  });
  [fSentiment, fStatus, sortSel].forEach(function (select) {
    select.addEventListener("change", compute);
  });
  sizeSel.addEventListener("change", function () { page = 0; render(); });
  prev.addEventListener("click", function () { page -= 1; render(); });
  next.addEventListener("click", function () { page += 1; render(); });
  body.addEventListener("click", function (event) {
    var button = event.target.closest("button.more");
    if (!button) { return; }
    var tr = button.closest("tr");
    var r = rows[parseInt(tr.dataset.index, 10)];
    var span = button.parentNode.querySelector(".review-text");
    var expanded = button.getAttribute("aria-expanded") === "true";
    var full = readable(r[2]);
    span.textContent = expanded ? preview(full) : full;
    button.textContent = expanded ? "more" : "less";
    button.setAttribute("aria-expanded", expanded ? "false" : "true");
  });
  compute();
})();
