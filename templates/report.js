(function () {
  "use strict";
  // Review text reaches the page only through textContent: never innerHTML with data.
  var island = document.getElementById("rows-data");
  var body = document.getElementById("rows-body");
  if (!island || !body) { return; }
  var data = JSON.parse(island.textContent);
  // Each row: [row, id, text, sentiment 1/0/2 (neutral)/null, score, status index, label 1/0/null, cut 0/1,
  //            spans [[start, end, weight]] or null, group index or null, rating or null,
  //            driver term indices or null]
  var rows = data.rows;
  var statuses = data.statuses;
  var groups = data.groups || [];
  var hasId = data.has_id;
  var hasLabel = data.has_label;
  var hasRating = data.has_rating;
  document.documentElement.classList.add("js");
  var previewChars = data.preview_chars;
  var SENT = { 1: "positive", 0: "negative", 2: "neutral" };
  var SENT_CSS = { 1: "pos", 0: "neg", 2: "neu" };

  var el = function (id) { return document.getElementById(id); };
  var search = el("search");
  var fSentiment = el("filter-sentiment");
  var fStatus = el("filter-status");
  var fGroup = el("filter-group");
  var termBox = el("term-filter");
  var termLabel = el("term-filter-label");
  var termButtons = Array.prototype.slice.call(document.querySelectorAll("button.term[data-term]"));
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
  var columns = 5 + (hasId ? 1 : 0) + (groups.length ? 1 : 0) + (hasLabel ? 1 : 0) + (hasRating ? 1 : 0);
  var term = null;
  var termWords = null;
  var termIndex = -1;
  var spanWords = new Array(rows.length);

  function thousands(n) {
    return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  function readable(text) {
    // Scraped reviews often carry HTML line breaks; show them as line breaks, as text.
    return text.replace(/<br\s*\/?>|[\u2028\u2029]/gi, "\n");
  }

  function cutPoint(text, limit) {
    // Where a preview of the original text ends: never inside a surrogate pair or a <br> tag.
    if (text.length <= limit) { return text.length; }
    var end = limit;
    var code = text.charCodeAt(end - 1);
    if (code >= 0xd800 && code <= 0xdbff) { end -= 1; }
    var tag = text.lastIndexOf("<", end);
    if (tag !== -1 && tag > end - 6 && text.indexOf(">", tag) >= end) { end = tag; }
    return end;
  }

  function level(weight) {
    return Math.min(4, Math.max(1, Math.ceil(Math.abs(weight) * 4)));
  }

  function mark(text, weight) {
    // Review text goes in as a text node only: never innerHTML.
    var m = document.createElement("mark");
    var side = weight > 0 ? "pos" : "neg";
    m.className = "hl " + side + " w" + level(weight);
    m.title = (weight > 0 ? "+" : "") + weight.toFixed(2) + ": pushes " + (weight > 0 ? "positive" : "negative");
    m.textContent = text;
    return m;
  }

  // Fills target with the text up to limit characters of the original, its strongest words
  // (the span indices in strong) highlighted; the row's word list holds every span.
  // Spans index the original text, so the <br> -> newline change runs on each piece alone.
  // Returns true when the text was cut.
  function fillText(target, text, spans, limit, strong) {
    var stop = cutPoint(text, limit);
    var list = (spans || []).filter(function (sp, j) { return !strong || strong.indexOf(j) !== -1; });
    for (var j = 0; j < list.length; j++) {
      // A preview never cuts a highlighted word in half: it stops before it.
      if (list[j][0] < stop && stop < list[j][1]) { stop = list[j][0]; break; }
    }
    var frag = document.createDocumentFragment();
    var pos = 0;
    for (var k = 0; k < list.length && list[k][0] < stop; k++) {
      var start = list[k][0];
      var end = Math.min(list[k][1], stop);
      if (start < pos || end <= start) { continue; }
      if (start > pos) { frag.appendChild(document.createTextNode(readable(text.slice(pos, start)))); }
      frag.appendChild(mark(readable(text.slice(start, end)), list[k][2]));
      pos = end;
    }
    var cut = stop < text.length;
    var tail = readable(text.slice(pos, stop));
    if (cut) { tail = tail.replace(/\s+$/, "") + "…"; }
    if (tail) { frag.appendChild(document.createTextNode(tail)); }
    target.replaceChildren(frag);
    return cut;
  }

  function normalWord(text) {
    return text.normalize("NFKC").toLowerCase().replace(/[\u2019\u2018\u02bc`\u00b4]/g, "'");
  }

  // True when the row's highlighted words hold the term: one word, or adjacent highlighted words
  // with nothing but spaces and punctuation between them.
  function hasTerm(i) {
    var r = rows[i];
    var spans = r[8];
    if (!spans) { return false; }
    var words = spanWords[i];
    if (!words) {
      words = spans.map(function (sp) { return normalWord(r[2].slice(sp[0], sp[1])); });
      spanWords[i] = words;
    }
    for (var a = 0; a + termWords.length <= words.length; a++) {
      var ok = true;
      for (var b = 0; b < termWords.length && ok; b++) {
        ok = words[a + b] === termWords[b] &&
          (b === 0 || !/[\p{L}\p{N}]/u.test(r[2].slice(spans[a + b - 1][1], spans[a + b][0])));
      }
      if (ok) { return true; }
    }
    return false;
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
    var wantSent = { positive: 1, negative: 0, neutral: 2 }[sentiment];
    if (wantSent === undefined) { wantSent = null; }
    var group = fGroup && fGroup.value !== "all" ? parseInt(fGroup.value, 10) : -1;
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
      if (group !== -1 && r[9] !== group) { continue; }
      if (termWords && !(r[11] ? r[11].indexOf(termIndex) !== -1 : hasTerm(i))) { continue; }
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
    matchCount.dataset.term = term || "";
    matchCount.dataset.group = group === -1 ? "" : groups[group];
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

  // Every weighted word of the row, strongest first, in a details box under its text.
  function wordList(r) {
    var details = document.createElement("details");
    details.className = "words";
    var summary = document.createElement("summary");
    summary.textContent = "all " + r[8].length + " weighted words";
    details.appendChild(summary);
    var ul = document.createElement("ul");
    ul.className = "word-list";
    r[8].slice().sort(function (a, b) {
      return Math.abs(b[2]) - Math.abs(a[2]) || a[0] - b[0];
    }).forEach(function (sp) {
      var li = document.createElement("li");
      li.appendChild(mark(readable(r[2].slice(sp[0], sp[1])), sp[2]));
      var num = document.createElement("span");
      num.className = "num";
      num.textContent = " " + (sp[2] > 0 ? "+" : "") + sp[2].toFixed(2);
      li.appendChild(num);
      ul.appendChild(li);
    });
    details.appendChild(ul);
    return details;
  }

  function textCell(tr, r) {
    var td = cell(tr, "col-text");
    var span = document.createElement("span");
    span.className = "review-text";
    td.appendChild(span);
    if (r[2] === "") {
      span.className = "review-text empty-text";
      span.textContent = "(empty)";
    } else if (fillText(span, r[2], r[8], previewChars, r[12])) {
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
    if (r[8] && r[8].length) { td.appendChild(wordList(r)); }
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
      if (r[9] !== null && r[9] !== undefined) { tr.dataset.group = groups[r[9]]; }
      cell(tr, "num", thousands(r[0]));
      if (hasId) { cell(tr, "col-id", r[1] === null ? "" : String(r[1])); }
      if (groups.length) { cell(tr, "col-group", r[9] === null ? "" : groups[r[9]]); }
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
        // a neutral decision neither matches nor misses a label
        if (r[6] !== null && r[3] !== null && r[3] !== 2 && r[6] !== r[3]) {
          var miss = document.createElement("span");
          miss.className = "miss";
          miss.textContent = " ✗ wrong";
          miss.title = "the prediction differs from this label";
          lab.appendChild(miss);
        }
      }
      if (hasRating) { cell(tr, "num col-rating", r[10] === null ? "" : String(r[10])); }
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
  [fSentiment, fStatus, sortSel, fGroup].forEach(function (select) {
    if (select) { select.addEventListener("change", compute); }
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
    fillText(span, r[2], r[8], expanded ? previewChars : Infinity, r[12]);
    button.textContent = expanded ? "more" : "less";
    button.setAttribute("aria-expanded", expanded ? "false" : "true");
  });

  // The rows' own term lists (from the scorer) decide when present; else the highlighted words.
  function setTerm(value, index) {
    term = value;
    termIndex = value ? index : -1;
    termWords = value ? value.split(/\s+/).filter(Boolean).map(normalWord) : null;
    termButtons.forEach(function (b) {
      b.setAttribute("aria-pressed", b.dataset.term === value ? "true" : "false");
    });
    termBox.hidden = !value;
    termLabel.textContent = value ? "reviews with \u201c" + value + "\u201d" : "";
    compute();
  }

  function showReviews() {
    var section = el("reviews");
    if (section && section.scrollIntoView) { section.scrollIntoView({ block: "start" }); }
  }

  termButtons.forEach(function (b) {
    b.addEventListener("click", function () {
      var value = b.dataset.term;
      setTerm(term === value ? null : value, parseInt(b.dataset.index, 10));
      if (term) { showReviews(); }
    });
  });
  el("term-filter-clear").addEventListener("click", function () { setTerm(null); });

  Array.prototype.forEach.call(document.querySelectorAll("button.group-link[data-group]"), function (b) {
    b.addEventListener("click", function () {
      var index = groups.indexOf(b.dataset.group);
      if (!fGroup || index === -1) { return; }
      fGroup.value = String(index);
      compute();
      showReviews();
    });
  });

  compute();
  compute();
})();

(function () {
  "use strict";
  // The groups table sorts by any column with a button in its header.
  var table = document.getElementById("groups-table");
  if (table) {
    var tbody = table.tBodies[0];
    var heads = Array.prototype.slice.call(table.querySelectorAll("th[data-key]"));
    heads.forEach(function (th) {
      th.querySelector("button").addEventListener("click", function () {
        var key = th.dataset.key;
        var ascending = th.getAttribute("aria-sort") === "descending" ||
          (th.getAttribute("aria-sort") === "none" && key === "name");
        var trs = Array.prototype.slice.call(tbody.rows);
        trs.sort(function (a, b) {
          // The merged "other groups" row stays last, whatever the order.
          if (a.dataset.other !== b.dataset.other) { return a.dataset.other ? 1 : -1; }
          var d = key === "name"
            ? a.dataset.name.localeCompare(b.dataset.name)
            : parseFloat(a.dataset[key]) - parseFloat(b.dataset[key]);
          return ascending ? d : -d;
        });
        heads.forEach(function (h) { h.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        trs.forEach(function (tr) { tbody.appendChild(tr); });
      });
    });
  }
  // Printing shows every collapsed full text.
  window.addEventListener("beforeprint", function () {
    Array.prototype.forEach.call(document.querySelectorAll("details"), function (d) { d.open = true; });
  });
})();
