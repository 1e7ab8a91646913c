// dpiqa gallery: renders the JSON block into pages of cards. Data only ever reaches the page through
// textContent and attributes (never innerHTML), so a file name is always text.
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("gallery-data").textContent);
  var $ = function (id) { return document.getElementById(id); };
  var nf = new Intl.NumberFormat("en");
  var collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
  var PAGE = D.page_size;
  var items = D.rows.map(function (r) {
    var path = r[1];
    return { rank: r[0], path: path, score: r[2], w: r[3], h: r[4], mos: r[5], bytes: r[6], thumb: r[7], href: r[8],
             name: path.split(/[\\/]/).pop(), lower: path.toLowerCase() };
  });
  var byName = null;  // sorted lazily: most visits never sort by name
  var lo = 0, hi = 1;
  items.forEach(function (it) { lo = Math.min(lo, it.score); hi = Math.max(hi, it.score); });
  var state = { sort: "best", filter: "", thr: D.threshold, belowOnly: false, page: 0 };
  var view = items, cards = [];

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function fmtScore(s) { return s.toFixed(3); }
  function fmtMos(m) { return Math.abs(m) >= 10 ? m.toFixed(1) : m.toFixed(3); }
  function fmtBytes(b) {
    if (b === null) return "file missing";
    if (b < 1024) return b + " B";
    if (b < 1048576) return (b / 1024).toFixed(0) + " KB";
    return (b / 1048576).toFixed(1) + " MB";
  }
  function safeHref(h) { return /^file:/i.test(h) ? h : null; }  // paths become file: URLs, nothing else
  function badgeColour(s) {  // light red (low) to light green (high): dark text stays readable on all
    var t = Math.max(0, Math.min(1, (s - lo) / ((hi - lo) || 1)));
    return "hsl(" + Math.round(t * 120) + ", 70%, 82%)";
  }

  function thumbNode(it) {
    var a = el("a", "thumb");
    var href = safeHref(it.href);
    if (href) a.href = href;
    a.title = it.path;
    var t = D.thumbs[it.thumb];
    if (t && t[0] !== null) {
      var img = el("img");
      img.alt = it.path;
      img.width = t[1];
      img.height = t[2];
      img.loading = "lazy";
      img.decoding = "async";
      img.addEventListener("error", function () {  // the thumbnail file was moved or deleted since
        a.replaceChildren(placeholder(it.path, "thumbnail missing"));
      });
      img.src = (D.mode === "folder" ? D.thumb_base : "") + t[0];
      a.appendChild(img);
    } else {
      a.appendChild(placeholder(it.path, t ? t[3] : "no thumbnail"));
    }
    return a;
  }
  function placeholder(path, reason) {
    var p = el("div", "ph");
    p.setAttribute("role", "img");
    p.setAttribute("aria-label", "No thumbnail for " + path + ": " + reason);
    p.appendChild(el("strong", "", "no thumbnail"));
    p.appendChild(document.createTextNode(reason));
    return p;
  }
  function card(it) {
    var li = el("li", "card");
    li.appendChild(thumbNode(it));
    var m = el("div", "meta");
    var b = el("span", "badge", fmtScore(it.score));
    b.style.backgroundColor = badgeColour(it.score);
    b.title = "score";
    m.appendChild(b);
    m.appendChild(el("span", "rank", "#" + it.rank));
    var n = el("div", "name", it.name);
    n.title = it.path;
    m.appendChild(n);
    if (D.has_mos && it.mos !== null) m.appendChild(el("div", "mos", "MOS " + fmtMos(it.mos)));
    m.appendChild(el("div", "size", (it.w ? it.w + " \u00d7 " + it.h + " \u00b7 " : "") + fmtBytes(it.bytes)));
    li.appendChild(m);
    li.classList.toggle("below", it.score < state.thr);
    cards.push([li, it]);
    return li;
  }

  // ---- view: filter, sort, page -------------------------------------------------------------
  function compute() {
    var list = items;
    if (state.sort === "name" || state.sort === "name-desc") {
      if (!byName) byName = items.slice().sort(function (a, b) { return collator.compare(a.name, b.name) || collator.compare(a.path, b.path); });
      list = byName;
    }
    var f = state.filter.toLowerCase();
    var keep = function (it) { return (!f || it.lower.indexOf(f) >= 0) && (!state.belowOnly || it.score < state.thr); };
    list = list.filter(keep);
    if (state.sort === "worst" || state.sort === "name-desc") list.reverse();
    view = list;
    state.page = Math.min(state.page, Math.max(0, Math.ceil(view.length / PAGE) - 1));
  }
  function render() {
    cards = [];
    var start = state.page * PAGE, end = Math.min(view.length, start + PAGE);
    var frag = document.createDocumentFragment();
    for (var i = start; i < end; i++) frag.appendChild(card(view[i]));
    $("grid").replaceChildren(frag);
    var pages = Math.max(1, Math.ceil(view.length / PAGE));
    $("shown").textContent = view.length === 0 ? "No photo matches." :
      "Showing " + nf.format(start + 1) + "\u2013" + nf.format(end) + " of " + nf.format(view.length) +
      (view.length !== items.length ? " (of " + nf.format(items.length) + " scored)" : "");
    $("page-info").textContent = "Page " + (state.page + 1) + " of " + pages;
    $("prev").disabled = state.page === 0;
    $("next").disabled = state.page >= pages - 1;
    $("pager").hidden = pages <= 1;
    renderFailures();
  }
  function update() { compute(); render(); }
  function goPage(delta) {
    var pages = Math.max(1, Math.ceil(view.length / PAGE));
    var p = Math.max(0, Math.min(pages - 1, state.page + delta));
    if (p === state.page) return;
    state.page = p;
    render();
    $("shown").scrollIntoView({ block: "start" });
    $("grid").focus({ preventScroll: true });
  }

  // ---- histogram and threshold ------------------------------------------------------------
  var BINS = 40, counts = new Array(BINS).fill(0);
  var binOf = function (s) { return Math.min(BINS - 1, Math.max(0, Math.floor((s - lo) / (hi - lo) * BINS))); };
  items.forEach(function (it) { counts[binOf(it.score)]++; });
  var sortedScores = items.map(function (it) { return it.score; }).sort(function (a, b) { return a - b; });
  function countBelow(t) {  // binary search in the sorted scores
    var a = 0, b = sortedScores.length;
    while (a < b) { var m = (a + b) >> 1; if (sortedScores[m] < t) a = m + 1; else b = m; }
    return a;
  }
  var PAD = { l: 34, r: 8, t: 6, b: 20 }, W = 0, H = 0;
  function measureHist() {  // only on load and resize: reading a size forces a layout of the whole page
    var c = $("hist"), dpr = window.devicePixelRatio || 1;
    W = c.clientWidth;
    H = c.clientHeight;
    c.width = Math.round(W * dpr);
    c.height = Math.round(H * dpr);
    drawHist();
  }
  function drawHist() {
    var c = $("hist"), dpr = window.devicePixelRatio || 1;
    var g = c.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, W, H);
    var pw = W - PAD.l - PAD.r, ph = H - PAD.t - PAD.b, top = Math.max.apply(null, counts.concat([1]));
    var x = function (s) { return PAD.l + (s - lo) / (hi - lo) * pw; };
    g.font = "11px system-ui, 'DejaVu Sans', sans-serif";
    g.fillStyle = "#5a5a5a";
    g.textAlign = "right";
    g.fillText(String(top), PAD.l - 5, PAD.t + 9);
    g.fillText("0", PAD.l - 5, PAD.t + ph);
    for (var i = 0; i < BINS; i++) {
      var s0 = lo + (hi - lo) * i / BINS, bh = counts[i] / top * ph;
      g.fillStyle = s0 + (hi - lo) / BINS <= state.thr ? "#d9827b" : "#8aa6cf";
      if (counts[i]) g.fillRect(x(s0) + 0.5, PAD.t + ph - bh, Math.max(1, pw / BINS - 1), bh);
    }
    g.strokeStyle = "#b9b9b3";
    g.beginPath(); g.moveTo(PAD.l, PAD.t + ph + 0.5); g.lineTo(PAD.l + pw, PAD.t + ph + 0.5); g.stroke();
    g.fillStyle = "#5a5a5a";
    g.textAlign = "center";
    for (var k = 0; k <= 4; k++) {
      var v = lo + (hi - lo) * k / 4;
      g.fillText(v.toFixed(2), Math.min(Math.max(x(v), PAD.l + 10), PAD.l + pw - 10), H - 5);
    }
    var tx = x(state.thr);
    g.strokeStyle = "#b3261e";
    g.lineWidth = 2;
    g.beginPath(); g.moveTo(tx, PAD.t); g.lineTo(tx, PAD.t + ph); g.stroke();
    g.lineWidth = 1;
  }
  function setThreshold(t, from) {
    if (!isFinite(t)) return;
    state.thr = Math.max(lo, Math.min(hi, t));
    if (from !== "range") $("thr-range").value = state.thr;
    if (from !== "num") $("thr-num").value = state.thr.toFixed(3);
    var n = countBelow(state.thr), total = items.length;
    $("thr-count").textContent = nf.format(n) + " of " + nf.format(total) + " photos score below " +
      state.thr.toFixed(3) + (total ? " (" + (100 * n / total).toFixed(1) + " %)" : "");
    $("thr-count").dataset.count = n;
    $("hist").setAttribute("aria-label", "Histogram of " + total + " scores from " + lo.toFixed(2) + " to " +
      hi.toFixed(2) + "; " + n + " below the threshold " + state.thr.toFixed(3));
    drawHist();
    if (state.belowOnly) { update(); return; }
    cards.forEach(function (c) { c[0].classList.toggle("below", c[1].score < state.thr); });
    document.querySelectorAll(".strip .card").forEach(function (li) {
      li.classList.toggle("below", Number(li.dataset.score) < state.thr);
    });
  }
  function thrFromPointer(e) {
    var r = $("hist").getBoundingClientRect();
    setThreshold(lo + (e.clientX - r.left - PAD.l) / (r.width - PAD.l - PAD.r) * (hi - lo));
  }

  // ---- failures, extremes, header ---------------------------------------------------------
  function renderFailures() {
    var f = state.filter.toLowerCase(), body = document.createDocumentFragment(), n = 0;
    D.failed.forEach(function (row) {
      if (f && row[0].toLowerCase().indexOf(f) < 0) return;
      var tr = el("tr");
      tr.appendChild(el("td", "", row[0]));
      tr.appendChild(el("td", "", row[1]));
      body.appendChild(tr);
      n++;
    });
    $("fail-body").replaceChildren(body);
    $("fail-title").textContent = "Failed files (" + (n === D.failed.length ? n : n + " of " + D.failed.length) + ")";
    $("fail-table").hidden = n === 0;
    $("fail-none").hidden = n !== 0;
    $("fail-none").textContent = D.failed.length ? "No failed file matches the filter." : "No file failed.";
  }
  function renderExtremes() {
    var k = 6;
    if (items.length < 4 * k) return;  // a small set fits on one screen anyway
    [["best", items.slice(0, k)], ["worst", items.slice(-k).reverse()]].forEach(function (pair) {
      var frag = document.createDocumentFragment();
      pair[1].forEach(function (it) { var li = card(it); li.dataset.score = it.score; frag.appendChild(li); });
      $(pair[0]).replaceChildren(frag);
    });
    $("extremes").hidden = false;
  }
  function header() {
    var s = nf.format(items.length) + " photos scored \u00b7 " + nf.format(D.failed.length) + " failed";
    if (items.length) s += " \u00b7 scores " + fmtScore(sortedScores[0]) + " to " + fmtScore(sortedScores[sortedScores.length - 1]);
    $("summary").textContent = s;
    $("footer").textContent = "From " + D.source + (D.errors_source ? " and " + D.errors_source : "") +
      ", made " + D.made + " by dpiqa " + D.version + " (" + D.mode + " thumbnails, " + D.thumb_size + " px).";
  }

  // ---- events -----------------------------------------------------------------------------
  var rng = $("thr-range"), num = $("thr-num");
  [rng, num].forEach(function (i) { i.min = lo; i.max = hi; i.step = 0.001; });
  rng.addEventListener("input", function () { setThreshold(Number(rng.value), "range"); });
  num.addEventListener("input", function () { if (num.value !== "") setThreshold(Number(num.value), "num"); });
  num.addEventListener("change", function () { if (num.value !== "") setThreshold(Number(num.value)); });
  var hist = $("hist"), dragging = false;
  hist.addEventListener("pointerdown", function (e) { dragging = true; hist.setPointerCapture(e.pointerId); thrFromPointer(e); });
  hist.addEventListener("pointermove", function (e) { if (dragging) thrFromPointer(e); });
  hist.addEventListener("pointerup", function () { dragging = false; });
  if (window.ResizeObserver) new ResizeObserver(measureHist).observe($("hist"));  // a scrollbar appearing too
  else window.addEventListener("resize", measureHist);
  $("sort").addEventListener("change", function (e) { state.sort = e.target.value; state.page = 0; update(); });
  var timer = null;
  $("filter").addEventListener("input", function (e) {
    clearTimeout(timer);
    timer = setTimeout(function () { state.filter = e.target.value; state.page = 0; update(); }, 120);
  });
  $("below-only").addEventListener("change", function (e) { state.belowOnly = e.target.checked; state.page = 0; update(); });
  $("prev").addEventListener("click", function () { goPage(-1); });
  $("next").addEventListener("click", function () { goPage(1); });
  $("grid").addEventListener("keydown", function (e) {  // arrow keys move between cards like in a grid
    var a = e.target.closest ? e.target.closest("a.thumb") : null;
    if (!a) return;
    var links = Array.prototype.slice.call($("grid").querySelectorAll("a.thumb"));
    var i = links.indexOf(a), cols = getComputedStyle($("grid")).gridTemplateColumns.split(" ").length;
    var j = { ArrowRight: i + 1, ArrowLeft: i - 1, ArrowDown: i + cols, ArrowUp: i - cols, Home: 0, End: links.length - 1 }[e.key];
    if (j === undefined) return;
    e.preventDefault();
    links[Math.max(0, Math.min(links.length - 1, j))].focus();
  });
  document.addEventListener("keydown", function (e) {
    var t = e.target, typing = /^(INPUT|SELECT|TEXTAREA)$/.test(t.tagName);
    if (t.id === "filter" && e.key === "Escape") { t.value = ""; state.filter = ""; update(); return; }
    if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "/") { e.preventDefault(); $("filter").focus(); }
    else if (e.key === "n") goPage(1);
    else if (e.key === "p") goPage(-1);
  });

  header();
  renderExtremes();
  update();
  measureHist();
  setThreshold(state.thr);
  window.dpiqaGallery = { renderedMs: performance.now(), state: state, countBelow: countBelow };
  document.body.dataset.ready = "1";
})();
