/*
 * shopstream dashboard.  Plain JavaScript, no framework and no build step:
 * the file is embedded in the binary and served as /app.js.
 *
 * Business page: loads the KPI windows over HTTP (spec/api.md), then follows
 * /api/stream (Server-Sent Events) and re-renders at most four times a
 * second.  Console pages (topics, messages, groups, brokers) are read over
 * HTTP and refreshed every 5 s while shown.  Routing is by location.hash.
 *
 * Everything the API returns is hostile input: it reaches the document only
 * as text nodes, textContent or attribute values set with setAttribute, never
 * as markup.  Links built from data are "#/..." with the data URL-encoded.
 * The element ids and data-* attributes the e2e test reads are the dashboard
 * DOM contract at the end of spec/api.md.
 */
'use strict';

(function () {

// ---------------------------------------------------------------------------
// Small helpers

const SVG_NS = 'http://www.w3.org/2000/svg';
const WINDOW_MS = { '1m': 60000, '1h': 3600000, '1d': 86400000 };
const WINDOW_WORD = { '1m': 'min', '1h': 'hour', '1d': 'day' };
const SERIES_LEN = 60;
const RENDER_MIN_MS = 250;          /* at most 4 renders a second */
const CONSOLE_REFRESH_MS = 5000;
const FETCH_TIMEOUT_MS = 15000;

const $ = (id) => document.getElementById(id);

/* el('tr', {class: 'x', 'data-y': v}, child...) - children are nodes or
 * values shown as text; attributes go through setAttribute. */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  append(node, children);
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttrs(node, attrs);
  append(node, children);
  return node;
}

function setAttrs(node, attrs) {
  if (!attrs) return;
  for (const k of Object.keys(attrs)) {
    const v = attrs[k];
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') node.textContent = String(v);
    else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(node, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(node, c);
    else if (c instanceof Node) node.appendChild(c);
    else node.appendChild(document.createTextNode(String(c)));
  }
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

function isNum(x) { return typeof x === 'number' && Number.isFinite(x); }
function num(x) { return isNum(x) ? x : 0; }
function str(x) { return x === undefined || x === null ? '' : String(x); }
function arr(x) { return Array.isArray(x) ? x : []; }
function obj(x) { return x && typeof x === 'object' && !Array.isArray(x) ? x : {}; }

const intFmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const compactFmt = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 });
const pctFmt = new Intl.NumberFormat(undefined, { style: 'percent', minimumFractionDigits: 1, maximumFractionDigits: 1 });
const pct2Fmt = new Intl.NumberFormat(undefined, { style: 'percent', minimumFractionDigits: 2, maximumFractionDigits: 2 });

function fmtInt(x) { return isNum(x) ? intFmt.format(x) : '—'; }
function fmtCompact(x) { return isNum(x) ? compactFmt.format(x) : '—'; }
function fmtPct(x) { return isNum(x) ? pctFmt.format(x) : '—'; }

/* Money is an integer in minor units with an ISO 4217 code.  Intl knows how
 * many minor digits each currency has (2 for GBP, 0 for JPY); a code it does
 * not know is shown beside the amount with two digits. */
const moneyFmts = new Map();
function moneyFormatter(currency, compact) {
  const code = /^[A-Za-z]{3}$/.test(str(currency)) ? str(currency).toUpperCase() : '';
  const key = code + (compact ? '/c' : '');
  let f = moneyFmts.get(key);
  if (f) return f;
  try {
    if (!code) throw new Error('no currency');
    const nf = new Intl.NumberFormat(undefined, {
      style: 'currency', currency: code, currencyDisplay: 'narrowSymbol',
      ...(compact ? { notation: 'compact', maximumFractionDigits: 1 } : {}),
    });
    const digits = new Intl.NumberFormat('en', { style: 'currency', currency: code })
      .resolvedOptions().maximumFractionDigits;
    const scale = Math.pow(10, digits);
    f = (minor) => nf.format(minor / scale);
  } catch (e) {
    const nf = new Intl.NumberFormat(undefined, compact
      ? { notation: 'compact', maximumFractionDigits: 1 }
      : { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    const label = str(currency).slice(0, 8);
    f = (minor) => (label ? label + ' ' : '') + nf.format(minor / 100);
  }
  moneyFmts.set(key, f);
  return f;
}
function fmtMoney(minor, currency) { return isNum(minor) ? moneyFormatter(currency, false)(minor) : '—'; }
function fmtMoneyCompact(minor, currency) { return isNum(minor) ? moneyFormatter(currency, true)(minor) : '—'; }

function fmtBytes(n) {
  if (!isNum(n)) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0, v = n;
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i === 0 ? intFmt.format(v) : v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)) + ' ' + units[i];
}

function pad2(n) { return n < 10 ? '0' + n : String(n); }
function fmtTime(ms) {
  if (!isNum(ms)) return '—';
  const d = new Date(ms);
  return pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + ':' + pad2(d.getSeconds());
}
function fmtDate(ms) {
  if (!isNum(ms)) return '—';
  const d = new Date(ms);
  return d.getFullYear() + '-' + pad2(d.getMonth() + 1) + '-' + pad2(d.getDate());
}
function fmtDateTime(ms) { return isNum(ms) ? fmtDate(ms) + ' ' + fmtTime(ms) : '—'; }
function fmtWindowLabel(ms, win) {
  if (!isNum(ms)) return '—';
  const d = new Date(ms);
  // Day windows are aligned to midnight UTC: show the UTC date.
  if (win === '1d') return d.getUTCFullYear() + '-' + pad2(d.getUTCMonth() + 1) + '-' + pad2(d.getUTCDate());
  return pad2(d.getHours()) + ':' + pad2(d.getMinutes());
}
function fmtAgo(ms) {
  if (!isNum(ms)) return '';
  const s = Math.round((Date.now() - ms) / 1000);
  if (s < 0) return 'in the future';
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.round(s / 60) + ' min ago';
  if (s < 86400) return Math.round(s / 3600) + ' h ago';
  return Math.round(s / 86400) + ' d ago';
}

function showError(id, err) {
  const box = $(id);
  if (!box) return;
  if (!err) { box.hidden = true; box.textContent = ''; return; }
  box.hidden = false;
  box.textContent = err instanceof Error ? err.message : String(err);
}

// ---------------------------------------------------------------------------
// HTTP

class HttpError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
  let res;
  try {
    res = await fetch(path, { signal: ctl.signal, headers: { Accept: 'application/json' }, cache: 'no-store' });
  } catch (e) {
    throw new HttpError(0, e.name === 'AbortError' ? 'The server did not answer in time.' : 'The server cannot be reached.');
  } finally {
    clearTimeout(timer);
  }
  let body = null;
  try { body = await res.json(); } catch (e) { body = null; }
  if (!res.ok) {
    const msg = body && typeof body.error === 'string' ? body.error : 'HTTP ' + res.status;
    throw new HttpError(res.status, msg);
  }
  if (body === null || typeof body !== 'object') throw new HttpError(res.status, 'The server sent something that is not JSON.');
  return body;
}

const enc = encodeURIComponent;

// ---------------------------------------------------------------------------
// Business page state

const state = {
  win: '1m',
  series: { '1m': new Map(), '1h': new Map(), '1d': new Map() },  /* start -> K */
  alerts: [],           /* newest first */
  alertIds: new Set(),
  orders: [],           /* recent order states, newest first */
  orderShown: null,     /* order id in #order-result */
  popular: null,
  loaded: false,
  currency: '',         /* the shop's currency, from the newest window that had a sale */
};

/* A window's counts only grow as it fills, so of two values of one window
 * the one with the larger counts is the newer: an HTTP answer that left the
 * server before an SSE event arrived does not undo that event. */
function progress(k) {
  const f = obj(k.funnel);
  return num(k.orders) + num(k.pv) + num(k.uv) + num(k.late_events) + num(k.refunds) +
    num(f.product_view) + num(f.purchase) + (k.final ? 1e15 : 0);
}

function keepSeries(win, k) {
  if (!k || typeof k !== 'object' || !isNum(k.start)) return false;
  const m = state.series[win];
  if (!m) return false;
  const old = m.get(k.start);
  if (old && progress(old) > progress(k)) return false;
  m.set(k.start, k);
  if (m.size > SERIES_LEN * 2) {
    const starts = [...m.keys()].sort((a, b) => a - b);
    for (let i = 0; i < starts.length - SERIES_LEN - 1; i++) m.delete(starts[i]);
  }
  return true;
}

function currentWindows(win) {
  const m = state.series[win];
  let cur = null;
  for (const k of m.values()) if (!cur || k.start > cur.start) cur = k;
  const prev = cur ? m.get(cur.start - WINDOW_MS[win]) || null : null;
  return { cur, prev };
}

function seriesList(win) {
  return [...state.series[win].values()].sort((a, b) => a.start - b.start).slice(-SERIES_LEN);
}

async function loadWindow(win) {
  const [latest, list] = await Promise.all([
    api('/api/kpis/latest?window=' + enc(win)),
    api('/api/kpis?window=' + enc(win) + '&limit=' + SERIES_LEN),
  ]);
  for (const k of arr(list.kpis)) keepSeries(win, k);
  if (latest.previous) keepSeries(win, latest.previous);
  if (latest.current) keepSeries(win, latest.current);
}

async function loadAlerts() {
  const body = await api('/api/alerts?limit=50');
  state.alerts = [];
  state.alertIds.clear();
  for (const a of arr(body.alerts)) addAlert(a, false);
}

function alertKey(a) {
  return str(a.id) || JSON.stringify(a);
}

function addAlert(a, front) {
  if (!a || typeof a !== 'object') return;
  const key = alertKey(a);
  if (state.alertIds.has(key)) return;
  state.alertIds.add(key);
  if (front) state.alerts.unshift(a); else state.alerts.push(a);
  state.alerts.sort((x, y) => num(y.ts) - num(x.ts));
  while (state.alerts.length > 100) state.alertIds.delete(alertKey(state.alerts.pop()));
}

async function loadOrders() {
  const body = await api('/api/orders?limit=10');
  state.orders = arr(body.orders).filter((s) => s && typeof s === 'object').slice(0, 10);
}

function upsertOrder(s) {
  if (!s || typeof s !== 'object' || s.order_id === undefined) return;
  const id = str(s.order_id);
  state.orders = [s, ...state.orders.filter((o) => str(o.order_id) !== id)].slice(0, 10);
}

async function loadPopular() {
  try {
    const body = await api('/api/recs/popular');
    state.popular = arr(obj(body.value).popular);
  } catch (e) {
    state.popular = e.status === 404 ? [] : state.popular;
  }
}

async function loadBusiness() {
  try {
    await loadWindow(state.win);
    showError('business-error', null);
  } catch (e) {
    showError('business-error', 'KPIs could not be loaded: ' + e.message);
  }
  await Promise.allSettled([loadAlerts(), loadOrders(), loadPopular()]);
  state.loaded = true;
  scheduleRender(true);
}

// Render throttling: the first change renders on the next frame, later ones
// wait until RENDER_MIN_MS has passed since the last render.
// Only the parts whose data changed are drawn again, so that a table the
// user is reading or hovering is not rebuilt four times a second.
let renderTimer = null;
let lastRender = 0;
const dirty = { kpi: true, alerts: true, orders: true, popular: true };
function scheduleRender(now, what) {
  if (!what || what === 'all') for (const k of Object.keys(dirty)) dirty[k] = true;
  else dirty[what] = true;
  if (renderTimer) return;
  const wait = now ? 0 : Math.max(0, lastRender + RENDER_MIN_MS - Date.now());
  renderTimer = setTimeout(() => {
    renderTimer = null;
    lastRender = Date.now();
    requestAnimationFrame(renderBusiness);
  }, wait);
}

// ---------------------------------------------------------------------------
// Business page rendering

/* sum: the figure grows as the window fills, so an open window is compared
 * with the previous one at the same pace (below); ratios are compared as
 * they are. */
const KPI_CARDS = [
  { id: 'kpi-gmv', field: 'gmv', kind: 'money', sum: true },
  { id: 'kpi-orders', field: 'orders', kind: 'int', sum: true },
  { id: 'kpi-aov', field: 'aov', kind: 'money' },
  { id: 'kpi-uv', field: 'uv', kind: 'int', sum: true },
  { id: 'kpi-conversion', field: 'conversion', kind: 'pct' },
  { id: 'kpi-pv', field: 'pv', kind: 'int', sum: true },
  { id: 'kpi-refunds', field: 'refunds', kind: 'money', sum: true },
];

/* The share of an open window that has passed, by the wall clock, or null
 * when that says nothing (a closed window, or event time far from now as in
 * a replay).  Below 10 % a comparison would be noise. */
function openShare(cur, win) {
  if (!cur || cur.final) return null;
  const size = WINDOW_MS[win];
  const f = (Date.now() - cur.start) / size;
  if (!(f > 0 && f < 1)) return null;
  return f;
}

function fmtKpi(kind, v, currency) {
  if (!isNum(v)) return '—';
  if (kind === 'money') return fmtMoney(v, currency);
  if (kind === 'pct') return pct2Fmt.format(v);
  return fmtInt(v);
}

function renderBusiness() {
  if (currentPage !== 'business') return;
  const d = { ...dirty };
  for (const k of Object.keys(dirty)) dirty[k] = false;
  const win = state.win;
  const { cur, prev } = currentWindows(win);
  if (d.kpi) renderKpis(win, cur, prev);
  if (d.kpi || d.alerts) renderRefunds(cur, prev);
  if (d.alerts) renderAlerts();
  if (d.orders) renderRecentOrders();
  if (d.popular) renderPopular();
}

function renderKpis(win, cur, prev) {
  const share = openShare(cur, win);
  const kpis = $('kpis');
  kpis.setAttribute('data-window', win);
  kpis.setAttribute('data-window-start', cur ? String(cur.start) : '');

  for (const unit of document.querySelectorAll('[data-unit="orders"]')) unit.textContent = '/ ' + WINDOW_WORD[win];

  const info = $('window-info');
  if (cur) {
    const end = isNum(cur.end) ? cur.end : cur.start + WINDOW_MS[win];
    const range = win === '1d' ? fmtWindowLabel(cur.start, win) + ' (UTC)' : fmtWindowLabel(cur.start, win) + ' – ' + fmtWindowLabel(end, win);
    info.textContent = 'Window ' + range + (cur.final ? ' · final' : ' · in progress') +
      (share !== null ? ' (' + Math.floor(share * 100) + '% elapsed)' : '') +
      (num(cur.late_events) ? ' · ' + fmtInt(cur.late_events) + ' late events' : '') +
      (cur.uv_exact === false ? ' · visitors estimated (±' + fmtPct(num(cur.uv_error)) + ')' : '') +
      (prev ? ' · compared with ' + fmtWindowLabel(prev.start, win) + (share !== null ? ' at the same pace' : '') : '');
  } else {
    info.textContent = state.loaded ? 'No ' + win + ' window yet: waiting for events…' : 'Loading…';
  }

  /* A window without a sale has no currency: show its zero GMV in the
   * currency the shop last sold in. */
  for (const k of [prev, cur]) if (k && str(k.currency)) state.currency = str(k.currency);
  const currency = (cur && str(cur.currency)) || (prev && str(prev.currency)) || state.currency;
  for (const c of KPI_CARDS) {
    const card = $(c.id);
    const v = cur ? cur[c.field] : undefined;
    const p = prev ? prev[c.field] : undefined;
    card.setAttribute('data-value', isNum(v) ? String(v) : '');
    card.querySelector('.kpi-value').textContent = fmtKpi(c.kind, v, currency);
    const prevEl = card.querySelector('.prev');
    prevEl.setAttribute('data-value', isNum(p) ? String(p) : '');
    const prevCurrency = (prev && str(prev.currency)) || currency;
    prevEl.textContent = 'vs ' + fmtKpi(c.kind, p, prevCurrency);
    prevEl.title = prev ? 'previous window (' + fmtWindowLabel(prev.start, win) + '): ' + fmtKpi(c.kind, p, prevCurrency) : 'no previous window';
    const delta = card.querySelector('.delta');
    delta.className = 'delta';
    const paced = c.sum && share !== null;
    delta.title = paced ? 'change against the previous window scaled to the ' + pctFmt.format(share) +
      ' of this window that has passed' : 'change against the previous window';
    if (paced && share < 0.1) {
      delta.textContent = '';
    } else if (isNum(v) && isNum(p) && p !== 0) {
      const base = paced ? p * share : p;
      const ch = (v - base) / Math.abs(base);
      const up = ch > 0;
      const badWhenUp = card.hasAttribute('data-bad-when-up');
      delta.textContent = (ch === 0 ? '■ ' : up ? '▲ ' : '▼ ') + pctFmt.format(Math.abs(ch));
      if (ch !== 0) delta.classList.add(up !== badWhenUp ? 'good' : 'bad');
    } else if (isNum(v) && isNum(p) && v > 0) {
      delta.textContent = '▲ new';
      delta.classList.add(card.hasAttribute('data-bad-when-up') ? 'bad' : 'good');
    } else {
      delta.textContent = '';
    }
  }

  const list = seriesList(win);
  const caption = 'per ' + WINDOW_WORD[win] + (list.length === 1 ? ', 1 window' : ', last ' + list.length + ' windows');
  $('chart-gmv-caption').textContent = caption;
  $('chart-orders-caption').textContent = caption;
  drawChart($('chart-gmv'), list, { field: 'gmv', type: 'line', money: true, currency, win });
  drawChart($('chart-orders'), list, { field: 'orders', type: 'bar', win });
  drawFunnel($('funnel'), cur);
  renderTop($('top-units'), cur ? arr(cur.top_products_by_units) : [], 'units');
  renderTop($('top-views'), cur ? arr(cur.top_products_by_views) : [], 'views');
}

// --- charts (own SVG code) -------------------------------------------------

/* Nice round tick step for a range, 1/2/5 x 10^n. */
function niceStep(max, count) {
  if (max <= 0) return 1;
  const raw = max / count;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

function chartSize(svgEl) {
  const r = svgEl.getBoundingClientRect();
  return { w: Math.max(200, Math.round(r.width) || 600), h: Math.max(120, Math.round(r.height) || 220) };
}

function drawChart(svgEl, list, opt) {
  const { w, h } = chartSize(svgEl);
  svgEl.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
  clear(svgEl);
  const m = { l: opt.money ? 64 : 44, r: 12, t: 12, b: 26 };
  const iw = w - m.l - m.r, ih = h - m.t - m.b;
  const vals = list.map((k) => num(k[opt.field]));
  const maxV = Math.max(0, ...vals);
  const step = niceStep(maxV || 1, 4);
  const top = Math.max(step, Math.ceil((maxV || 1) / step) * step);
  const y = (v) => m.t + ih - (v / top) * ih;
  const n = Math.max(list.length, 1);
  const slot = iw / n;
  const x = (i) => m.l + slot * i + slot / 2;
  const fmtY = opt.money ? (v) => fmtMoneyCompact(v, opt.currency) : (v) => fmtCompact(v);

  const grid = svg('g', { class: 'grid' });
  for (let v = 0; v <= top + step / 2; v += step) {
    grid.appendChild(svg('line', { x1: m.l, x2: w - m.r, y1: y(v), y2: y(v) }));
    grid.appendChild(svg('text', { x: m.l - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'axis' }, fmtY(v)));
  }
  svgEl.appendChild(grid);

  if (list.length === 0) {
    svgEl.appendChild(svg('text', { x: m.l + iw / 2, y: m.t + ih / 2, 'text-anchor': 'middle', class: 'empty' }, 'no data yet'));
    return;
  }

  // x labels: about six, on window boundaries.
  const every = Math.max(1, Math.ceil(list.length / 6));
  const xl = svg('g', {});
  for (let i = list.length - 1; i >= 0; i -= every) {
    xl.appendChild(svg('text', { x: x(i), y: h - 8, 'text-anchor': 'middle', class: 'axis' }, fmtWindowLabel(list[i].start, opt.win)));
  }
  svgEl.appendChild(xl);

  const last = list.length - 1;
  if (opt.type === 'bar') {
    const g = svg('g', { class: 'bars' });
    const bw = Math.max(1, slot * 0.7);
    list.forEach((k, i) => {
      const v = vals[i];
      const hh = Math.max(v > 0 ? 1 : 0, m.t + ih - y(v));
      g.appendChild(svg('rect', {
        x: (x(i) - bw / 2).toFixed(1), y: (m.t + ih - hh).toFixed(1), width: bw.toFixed(1), height: hh.toFixed(1),
        rx: Math.min(2, bw / 4), class: k.final === false && i === last ? 'bar open' : 'bar',
      }));
    });
    svgEl.appendChild(g);
  } else {
    const pts = list.map((k, i) => [x(i), y(vals[i])]);
    const line = pts.map((p, i) => (i ? 'L' : 'M') + p[0].toFixed(1) + ' ' + p[1].toFixed(1)).join(' ');
    const area = line + ' L' + pts[last][0].toFixed(1) + ' ' + (m.t + ih) + ' L' + pts[0][0].toFixed(1) + ' ' + (m.t + ih) + ' Z';
    svgEl.appendChild(svg('path', { d: area, class: 'area' }));
    svgEl.appendChild(svg('path', { d: line, class: 'line' }));
    svgEl.appendChild(svg('circle', { cx: pts[last][0].toFixed(1), cy: pts[last][1].toFixed(1), r: 3.5,
      class: list[last].final === false ? 'point open' : 'point' }));
  }

  // Hover: a guide line and a tooltip for the nearest window.
  const guide = svg('line', { class: 'guide', x1: 0, x2: 0, y1: m.t, y2: m.t + ih, visibility: 'hidden' });
  svgEl.appendChild(guide);
  const hit = svg('rect', { x: m.l, y: m.t, width: iw, height: ih, class: 'hit' });
  const tip = $('tooltip');
  hit.addEventListener('mousemove', (ev) => {
    const r = svgEl.getBoundingClientRect();
    const px = (ev.clientX - r.left) * (w / r.width);
    const i = Math.min(list.length - 1, Math.max(0, Math.floor((px - m.l) / slot)));
    const k = list[i];
    guide.setAttribute('x1', x(i)); guide.setAttribute('x2', x(i));
    guide.setAttribute('visibility', 'visible');
    clear(tip);
    append(tip, [
      el('div', { class: 'tip-title' }, fmtDateTime(k.start) + (k.final === false ? ' (open)' : '')),
      el('div', {}, opt.money ? fmtMoney(k[opt.field], k.currency) : fmtInt(k[opt.field])),
    ]);
    tip.hidden = false;
    const tx = Math.min(window.innerWidth - tip.offsetWidth - 8, ev.clientX + 12);
    tip.style.left = tx + 'px';
    tip.style.top = (ev.clientY + window.scrollY - tip.offsetHeight - 10) + 'px';
  });
  hit.addEventListener('mouseleave', () => { guide.setAttribute('visibility', 'hidden'); tip.hidden = true; });
  svgEl.appendChild(hit);
}

// --- funnel ------------------------------------------------------------------

const FUNNEL_STEPS = [
  ['product_view', 'Product view'],
  ['add_to_cart', 'Add to cart'],
  ['checkout', 'Checkout'],
  ['purchase', 'Purchase'],
];

function drawFunnel(box, cur) {
  const f = obj(cur && cur.funnel);
  const vals = FUNNEL_STEPS.map(([k]) => num(f[k]));
  const first = vals[0];
  const maxV = Math.max(1, ...vals);
  clear(box);
  const width = Math.max(260, Math.round(box.getBoundingClientRect().width) || 480);
  const rowH = 46, labelW = Math.min(120, width * 0.28), valueW = 120;
  const barW = Math.max(40, width - labelW - valueW);
  const height = FUNNEL_STEPS.length * rowH;
  const s = svg('svg', { class: 'funnel-svg', viewBox: '0 0 ' + width + ' ' + height, width: '100%', height, role: 'img', 'aria-label': 'conversion funnel' });
  FUNNEL_STEPS.forEach(([key, label], i) => {
    const v = vals[i];
    const y0 = i * rowH;
    const bw = Math.max(v > 0 ? 2 : 0, (v / maxV) * barW);
    const g = svg('g', { class: 'funnel-step', 'data-step': key, 'data-value': String(v) });
    g.appendChild(svg('text', { x: 0, y: y0 + 19, class: 'funnel-label' }, label));
    g.appendChild(svg('rect', { x: labelW, y: y0 + 4, width: barW, height: 22, rx: 4, class: 'funnel-track' }));
    g.appendChild(svg('rect', { x: labelW, y: y0 + 4, width: bw.toFixed(1), height: 22, rx: 4, class: 'funnel-bar step-' + i }));
    g.appendChild(svg('text', { x: labelW + barW + 10, y: y0 + 19, class: 'funnel-value' }, fmtInt(v),
      i && first > 0 ? svg('tspan', { class: 'funnel-share' }, '  ' + pctFmt.format(v / first)) : null,
      svg('title', {}, i && first > 0 ? pctFmt.format(v / first) + ' of the sessions that viewed a product' : 'sessions')));
    if (i > 0) {
      const before = vals[i - 1];
      const drop = before > 0 ? 1 - v / before : 0;
      g.appendChild(svg('text', { x: labelW + 6, y: y0 + 40, class: 'funnel-drop' },
        '↓ drop-off ' + (before > 0 ? pctFmt.format(Math.max(0, drop)) : '—') + ' from ' + FUNNEL_STEPS[i - 1][1].toLowerCase()));
    }
    s.appendChild(g);
  });
  box.appendChild(s);
}

// --- refunds, top products, alerts, orders ---------------------------------

function renderRefunds(cur, prev) {
  const box = $('refunds');
  clear(box);
  const c = cur ? cur.currency : '';
  const paid = cur ? num(cur.paid_revenue) : 0;
  const refunds = cur ? num(cur.refunds) : 0;
  const rate = paid > 0 ? refunds / paid : null;
  const stat = (label, value, cls) => el('div', { class: 'stat' + (cls ? ' ' + cls : '') },
    el('div', { class: 'stat-label' }, label), el('div', { class: 'stat-value' }, value));
  box.appendChild(el('div', { class: 'stats' },
    stat('Paid revenue', cur ? fmtMoney(cur.paid_revenue, c) : '—'),
    stat('Refunded', cur ? fmtMoney(cur.refunds, c) : '—', refunds > 0 ? 'bad' : ''),
    stat('Net revenue', cur ? fmtMoney(cur.net_revenue, c) : '—'),
    stat('Refund rate', rate === null ? '—' : pctFmt.format(rate)),
  ));
  if (prev) {
    box.appendChild(el('p', { class: 'muted small' }, 'Previous window: ' + fmtMoney(prev.refunds, prev.currency) +
      ' refunded of ' + fmtMoney(prev.paid_revenue, prev.currency) + ' paid.'));
  }
  const anomalies = state.alerts.filter((a) => a.type === 'refund_anomaly').slice(0, 5);
  box.appendChild(el('h3', { class: 'sub-head' }, 'Refund anomalies'));
  if (!anomalies.length) {
    box.appendChild(el('p', { class: 'muted small' }, 'None.'));
  } else {
    const ul = el('ul', { class: 'mini-list' });
    for (const a of anomalies) {
      ul.appendChild(el('li', {},
        el('span', { class: 'mono' }, str(a.user_id)), ' · ',
        isNum(a.refund_total) ? fmtMoney(a.refund_total, c) : '', ' in ',
        fmtInt(a.refunds), ' refunds · ',
        el('span', { class: 'muted' }, fmtAgo(a.ts))));
    }
    box.appendChild(ul);
  }
}

function productButton(id) {
  return el('button', { type: 'button', class: 'link mono', title: 'recommendations for this product',
    onclick: () => {
      $('rec-kind').value = 'product'; $('rec-input').value = str(id); lookupRecs();
      $('rec-form').scrollIntoView({ block: 'nearest', behavior: 'smooth' });
    } }, str(id));
}

function orderButton(id) {
  return el('button', { type: 'button', class: 'link mono', title: 'look up this order',
    onclick: () => {
      $('order-input').value = str(id); lookupOrder();
      $('order-form').scrollIntoView({ block: 'nearest', behavior: 'smooth' });
    } }, str(id));
}

function renderTop(table, rows, field) {
  const tb = clear(table.tBodies[0]);
  const maxV = Math.max(1, ...rows.map((r) => num(obj(r)[field])));
  if (!rows.length) {
    tb.appendChild(el('tr', {}, el('td', { colspan: 4, class: 'muted' }, 'no data in this window yet')));
    return;
  }
  rows.slice(0, 10).forEach((r, i) => {
    r = obj(r);
    const bar = el('div', { class: 'bar-fill' });
    bar.style.width = (100 * num(r[field]) / maxV).toFixed(1) + '%';
    tb.appendChild(el('tr', { class: 'top-row' },
      el('td', { class: 'num muted' }, i + 1),
      el('td', {}, productButton(r.product_id)),
      el('td', { class: 'num' }, fmtInt(r[field])),
      el('td', { class: 'bar-col' }, el('div', { class: 'bar-track' }, bar))));
  });
}

const ALERT_TYPES = { sla_breach: 'SLA breach', refund_anomaly: 'Refund anomaly' };

function renderAlerts() {
  const ul = clear($('alerts'));
  $('alerts-count').textContent = state.alerts.length ? state.alerts.length + ' shown, newest first' : '';
  if (!state.alerts.length) {
    ul.appendChild(el('li', { class: 'muted empty-row' }, 'No alerts.'));
    return;
  }
  for (const a of state.alerts.slice(0, 50)) {
    const type = str(a.type);
    const oid = a.order_id !== undefined ? a.order_id : a.last_order_id;
    ul.appendChild(el('li', { class: 'alert-row', 'data-type': type },
      el('span', { class: 'badge type-' + (ALERT_TYPES[type] ? type : 'other') }, ALERT_TYPES[type] || type || 'alert'),
      el('span', { class: 'alert-msg' }, str(a.message)),
      el('span', { class: 'alert-ids' },
        oid !== undefined && oid !== null ? ['order ', orderButton(oid)] : null,
        a.user_id !== undefined ? [' user ', el('span', { class: 'mono' }, str(a.user_id))] : null),
      el('span', { class: 'alert-time muted', title: fmtDateTime(a.ts) }, fmtTime(a.ts))));
  }
}

function statusBadge(status) {
  const s = str(status);
  return el('span', { class: 'badge status status-' + s.replace(/[^a-z_]/g, '') }, s.replace(/_/g, ' ') || '?');
}

function renderRecentOrders() {
  const box = clear($('recent-orders'));
  if (!state.orders.length) {
    box.appendChild(el('p', { class: 'muted small' }, 'No orders yet.'));
    return;
  }
  const t = el('table', { class: 'table compact' });
  const tb = el('tbody');
  for (const s of state.orders) {
    tb.appendChild(el('tr', { class: 'recent-order' },
      el('td', {}, orderButton(s.order_id)),
      el('td', {}, statusBadge(s.status)),
      el('td', { class: 'num' }, fmtMoney(s.amount, s.currency)),
      el('td', { class: 'num muted' }, fmtTime(s.updated_ts))));
  }
  t.appendChild(tb);
  box.appendChild(t);
}

function renderRecRows(box, list) {
  const maxS = Math.max(1e-12, ...list.map((r) => num(obj(r).score)));
  const digits = maxS >= 100 ? 0 : maxS >= 1 ? 2 : 3;
  const scoreFmt = new Intl.NumberFormat(undefined, { minimumFractionDigits: digits, maximumFractionDigits: digits });
  for (const r0 of list) {
    const r = obj(r0);
    const bar = el('div', { class: 'bar-fill' });
    bar.style.width = Math.max(0, Math.min(100, 100 * num(r.score) / maxS)).toFixed(1) + '%';
    box.appendChild(el('div', { class: 'rec-row', 'data-product': str(r.product_id) },
      productButton(r.product_id),
      el('div', { class: 'bar-track' }, bar),
      el('span', { class: 'num score' }, isNum(r.score) ? scoreFmt.format(r.score) : '—')));
  }
}

function renderPopular() {
  const box = clear($('rec-popular'));
  const list = arr(state.popular).slice(0, 10);
  if (!list.length) {
    box.appendChild(el('p', { class: 'muted small' }, state.popular ? 'Nothing popular yet.' : 'Not available.'));
    return;
  }
  const inner = el('div', { class: 'popular-rows' });
  renderRecRows(inner, list);
  box.appendChild(inner);
}

// --- order lookup --------------------------------------------------------------

const ORDER_STEPS = [
  ['created_ts', 'Created'], ['paid_ts', 'Paid'], ['shipped_ts', 'Shipped'], ['delivered_ts', 'Delivered'],
  ['cancelled_ts', 'Cancelled'], ['return_requested_ts', 'Return requested'], ['refunded_ts', 'Refunded'],
];

let orderSeq = 0;
async function lookupOrder(quiet) {
  const id = $('order-input').value.trim();
  const box = $('order-result');
  if (!id) { clear(box); box.removeAttribute('data-status'); return; }
  const seq = ++orderSeq;
  if (!quiet) { box.classList.add('loading'); }
  let body;
  try {
    body = await api('/api/orders/' + enc(id));
  } catch (e) {
    if (seq !== orderSeq) return;
    box.classList.remove('loading');
    clear(box);
    box.removeAttribute('data-status');
    state.orderShown = null;
    box.appendChild(el('p', { class: e.status === 404 ? 'not-found' : 'error-text' },
      e.status === 404 ? 'no such order: ' + id : 'Lookup failed: ' + e.message));
    return;
  }
  if (seq !== orderSeq) return;
  box.classList.remove('loading');
  renderOrder(box, body);
  state.orderShown = str(body.order_id || id);
}

function renderOrder(box, body) {
  const s = obj(body.state);
  clear(box);
  box.setAttribute('data-status', str(s.status));
  const cur = s.currency;
  box.appendChild(el('div', { class: 'order-head' },
    el('span', { class: 'mono order-id' }, str(body.order_id || s.order_id)), statusBadge(s.status),
    s.sla_breached ? el('span', { class: 'badge type-sla_breach' }, 'SLA breached') : null,
    s.external ? el('span', { class: 'badge' }, 'external') : null));
  const stat = (label, value) => el('div', { class: 'stat' }, el('div', { class: 'stat-label' }, label), el('div', { class: 'stat-value' }, value));
  box.appendChild(el('div', { class: 'stats small-stats' },
    stat('Amount', fmtMoney(s.amount, cur)), stat('Paid', fmtMoney(s.paid, cur)),
    stat('Refunded', fmtMoney(s.refunded, cur)), stat('User', str(s.user_id) || '—')));

  const tl = el('ol', { class: 'timeline' });
  for (const [k, label] of ORDER_STEPS) {
    const t = s[k];
    if (!isNum(t) && ['cancelled_ts', 'return_requested_ts', 'refunded_ts'].includes(k)) continue;
    tl.appendChild(el('li', { class: isNum(t) ? 'done' : 'todo' },
      el('span', { class: 'tl-dot' }), el('span', { class: 'tl-label' }, label),
      el('span', { class: 'tl-time muted' }, isNum(t) ? fmtDateTime(t) : '')));
  }
  box.appendChild(tl);

  const hist = arr(body.history);
  const t = el('table', { class: 'table compact history' },
    el('thead', {}, el('tr', {}, el('th', {}, 'Time'), el('th', {}, 'Event'), el('th', {}, 'Details'))));
  const tb = el('tbody');
  for (const e0 of hist) {
    const e = obj(e0);
    const details = [];
    if (isNum(e.amount)) details.push(fmtMoney(e.amount, e.currency || cur));
    if (Array.isArray(e.items)) details.push(e.items.length + (e.items.length === 1 ? ' item' : ' items'));
    for (const f of ['payment_method', 'carrier', 'reason', 'return_id']) if (e[f] !== undefined && e[f] !== null) details.push(str(e[f]));
    tb.appendChild(el('tr', { class: 'history-row' },
      el('td', { class: 'muted nowrap' }, fmtDateTime(e.ts)),
      el('td', {}, el('span', { class: 'mono' }, str(e.type))),
      el('td', {}, details.join(' · '))));
  }
  if (!hist.length) tb.appendChild(el('tr', {}, el('td', { colspan: 3, class: 'muted' }, 'no events')));
  t.appendChild(tb);
  box.appendChild(t);
}

// --- recommendations -----------------------------------------------------------

let recSeq = 0;
async function lookupRecs() {
  const id = $('rec-input').value.trim();
  const kind = $('rec-kind').value === 'user' ? 'user' : 'product';
  const box = $('rec-result');
  if (!id) { clear(box); return; }
  const seq = ++recSeq;
  let body;
  try {
    body = await api('/api/recs/' + kind + '/' + enc(id));
  } catch (e) {
    if (seq !== recSeq) return;
    clear(box);
    box.removeAttribute('data-key');
    box.appendChild(el('p', { class: e.status === 404 ? 'not-found' : 'error-text' },
      e.status === 404 ? 'no recommendations for ' + kind + ' ' + id : 'Lookup failed: ' + e.message));
    return;
  }
  if (seq !== recSeq) return;
  const v = obj(body.value);
  const list = arr(kind === 'user' ? v.recommended : v.similar);
  clear(box);
  box.setAttribute('data-key', str(body.key));
  box.appendChild(el('p', { class: 'muted small' },
    (kind === 'user' ? 'For user ' : 'Similar to ') + id + ' · ' + list.length + ' products' +
    (isNum(v.ts) ? ' · updated ' + fmtAgo(v.ts) : '')));
  if (!list.length) box.appendChild(el('p', { class: 'muted small' }, 'empty list'));
  renderRecRows(box, list);
}

async function fillRecPlaceholder() {
  try {
    const body = await api('/api/recs?kind=product&limit=1');
    const k = arr(body.keys)[0];
    if (k !== undefined) $('rec-input').placeholder = 'product id, e.g. ' + str(k).slice(0, 40);
  } catch (e) { /* a hint only */ }
}

// ---------------------------------------------------------------------------
// Server-Sent Events

let es = null;
let sseBroken = false;
let reconnectTimer = null;

function setStatus(st, text) {
  const s = $('status');
  s.setAttribute('data-state', st);
  s.title = 'live updates: ' + text;
  $('status-text').textContent = text;
}

function parseData(ev) {
  try { return JSON.parse(ev.data); } catch (e) { return null; }
}

function connectStream() {
  if (es) es.close();
  setStatus('connecting', 'connecting');
  es = new EventSource('/api/stream');
  es.addEventListener('open', () => {
    setStatus('live', 'live');
    if (sseBroken) {
      // Events were missed while the stream was down: load the state again.
      sseBroken = false;
      loadBusiness();
    }
  });
  es.addEventListener('error', () => {
    sseBroken = true;
    if (es.readyState === EventSource.CLOSED) {
      // The browser gave up (e.g. an HTTP error): retry ourselves.
      setStatus('down', 'offline');
      if (!reconnectTimer) reconnectTimer = setTimeout(() => { reconnectTimer = null; connectStream(); }, 3000);
    } else {
      setStatus('reconnecting', 'reconnecting');
    }
  });
  es.addEventListener('kpi', (ev) => {
    const k = parseData(ev);
    if (!k || typeof k !== 'object') return;
    const win = str(k.window);
    if (!WINDOW_MS[win]) return;
    keepSeries(win, k);
    if (win === state.win) scheduleRender(false, 'kpi');
  });
  es.addEventListener('alert', (ev) => {
    const a = parseData(ev);
    if (!a) return;
    addAlert(a, true);
    scheduleRender(false, 'alerts');
  });
  es.addEventListener('order', (ev) => {
    const s = parseData(ev);
    if (!s || typeof s !== 'object') return;
    upsertOrder(s);
    scheduleRender(false, 'orders');
    if (state.orderShown !== null && str(s.order_id) === state.orderShown) refreshShownOrder();
  });
}

// The order on show is fetched again when it changes, at most once a second.
let orderRefreshTimer = null;
function refreshShownOrder() {
  if (orderRefreshTimer) return;
  orderRefreshTimer = setTimeout(() => {
    orderRefreshTimer = null;
    if (state.orderShown !== null && $('order-input').value.trim() === state.orderShown) lookupOrder(true);
  }, 1000);
}

// ---------------------------------------------------------------------------
// Console pages

async function renderTopics(alive) {
  const body = await api('/api/topics');
  if (!alive()) return;
  const topics = arr(body.topics).map(obj);
  const filter = $('topics-filter').value.trim().toLowerCase();
  const showInternal = $('topics-internal').checked;
  const tb = clear($('topics-table').tBodies[0]);
  let total = 0, shown = 0, bytes = 0;
  for (const t of topics) {
    total++;
    const name = str(t.name);
    if (!showInternal && t.internal) continue;
    if (filter && !name.toLowerCase().includes(filter)) continue;
    shown++;
    bytes += num(t.size_bytes);
    const href = '#/topics/' + enc(name);
    tb.appendChild(el('tr', { class: 'topic-row clickable', 'data-topic': name, onclick: () => { location.hash = href; } },
      el('td', {}, el('a', { href, class: 'mono' }, name)),
      el('td', { class: 'num' }, fmtInt(t.partitions)),
      el('td', { class: 'num' }, fmtInt(t.replication_factor)),
      el('td', { class: 'num' }, fmtInt(t.messages)),
      el('td', { class: 'num' }, fmtBytes(t.size_bytes)),
      el('td', {}, t.internal ? el('span', { class: 'badge' }, 'internal') : null)));
  }
  if (!shown) tb.appendChild(el('tr', {}, el('td', { colspan: 6, class: 'muted' }, total ? 'no topic matches' : 'no topics')));
  $('topics-info').textContent = total + ' topics' + (shown !== total ? ', ' + shown + ' shown' : '') + ' · ' + fmtBytes(bytes);
}

async function renderTopic(alive, name) {
  $('topic-title').textContent = name;
  $('topic-browse').setAttribute('href', '#/messages?topic=' + enc(name) + '&partition=0');
  const body = await api('/api/topics/' + enc(name));
  if (!alive()) return;
  const parts = arr(body.partitions).map(obj);
  let msgs = 0, bytes = 0;
  const tb = clear($('partitions-table').tBodies[0]);
  for (const p of parts) {
    const replicas = arr(p.replicas), isr = arr(p.isr);
    const under = isr.length < replicas.length;
    const n = isNum(p.high) && isNum(p.low) ? p.high - p.low : null;
    msgs += num(n); bytes += num(p.size_bytes);
    tb.appendChild(el('tr', { class: 'partition-row' + (under ? ' warn' : ''), 'data-partition': str(p.partition) },
      el('td', { class: 'num' }, fmtInt(p.partition)),
      el('td', { class: 'num' }, fmtInt(p.leader)),
      el('td', { class: 'mono' }, replicas.map(str).join(', ')),
      el('td', { class: 'mono' }, isr.map(str).join(', '), under ? el('span', { class: 'badge bad' }, 'under-replicated') : null),
      el('td', { class: 'num' }, fmtInt(p.low)),
      el('td', { class: 'num' }, fmtInt(p.high)),
      el('td', { class: 'num' }, n === null ? '—' : fmtInt(n)),
      el('td', { class: 'num' }, fmtBytes(p.size_bytes)),
      el('td', {}, el('a', { href: '#/messages?topic=' + enc(name) + '&partition=' + enc(str(p.partition)) }, 'messages'))));
  }
  $('topic-info').textContent = parts.length + ' partitions · ' + fmtInt(msgs) + ' messages · ' + fmtBytes(bytes) +
    (body.internal ? ' · internal' : '');
  const showDefaults = $('configs-defaults').checked;
  const ctb = clear($('configs-table').tBodies[0]);
  const configs = arr(body.configs).map(obj).sort((a, b) => str(a.name).localeCompare(str(b.name)));
  for (const c of configs) {
    if (c.default && !showDefaults) continue;
    ctb.appendChild(el('tr', { class: c.default ? '' : 'nondefault' },
      el('td', { class: 'mono' }, str(c.name)),
      el('td', { class: 'mono wrap' }, c.sensitive ? '••••••' : c.value === null || c.value === undefined ? '—' : str(c.value)),
      el('td', {}, c.default ? el('span', { class: 'muted' }, 'default') : el('span', { class: 'badge' }, 'set'))));
  }
  if (!ctb.rows.length) ctb.appendChild(el('tr', {}, el('td', { colspan: 3, class: 'muted' }, configs.length ? 'all defaults (tick "show defaults")' : 'no configs')));
}

// --- messages ----------------------------------------------------------------

const msgState = { topics: [], nextOffset: null };

async function loadTopicChoices(selected) {
  const body = await api('/api/topics');
  msgState.topics = arr(body.topics).map(obj);
  const sel = $('msg-topic');
  const prev = selected !== undefined ? selected : sel.value;
  clear(sel);
  for (const t of msgState.topics) sel.appendChild(el('option', { value: str(t.name) }, str(t.name)));
  if (prev && !msgState.topics.some((t) => str(t.name) === prev)) sel.appendChild(el('option', { value: prev }, prev));
  if (prev) sel.value = prev;
  else {
    const first = msgState.topics.find((t) => !t.internal) || msgState.topics[0];
    if (first) sel.value = str(first.name);
  }
  fillPartitions();
}

function fillPartitions(selected) {
  const sel = $('msg-partition');
  const prev = selected !== undefined ? String(selected) : sel.value;
  const t = msgState.topics.find((x) => str(x.name) === $('msg-topic').value);
  const n = t && isNum(t.partitions) ? Math.min(t.partitions, 10000) : 1;
  clear(sel);
  for (let i = 0; i < n; i++) sel.appendChild(el('option', { value: String(i) }, String(i)));
  if (prev && Number(prev) >= n) sel.appendChild(el('option', { value: prev }, prev));
  sel.value = prev && /^\d+$/.test(prev) ? prev : '0';
}

function syncModeInputs() {
  const mode = $('msg-mode').value;
  $('msg-offset-label').hidden = mode !== 'offset';
  $('msg-time-label').hidden = mode !== 'time';
}

function messagesQuery() {
  const topic = $('msg-topic').value;
  const q = new URLSearchParams();
  q.set('partition', $('msg-partition').value || '0');
  const mode = $('msg-mode').value;
  if (mode === 'offset') q.set('offset', String(Math.max(0, Math.floor(Number($('msg-offset').value) || 0))));
  else if (mode === 'time' && $('msg-time').value) {
    const t = new Date($('msg-time').value).getTime();
    if (isNum(t)) q.set('time', String(t));
  }
  const limit = Math.max(1, Math.min(500, Math.floor(Number($('msg-limit').value) || 50)));
  q.set('limit', String(limit));
  const text = $('msg-q').value;
  if (text) q.set('q', text);
  return { topic, q };
}

function prettyValue(v) {
  if (v === null || v === undefined) return { text: 'null', json: false };
  const s = String(v);
  const t = s.trim();
  if ((t.startsWith('{') && t.endsWith('}')) || (t.startsWith('[') && t.endsWith(']'))) {
    try { return { text: JSON.stringify(JSON.parse(t), null, 2), json: true }; } catch (e) { /* not JSON */ }
  }
  return { text: s, json: false };
}

/* params: the query of the #/messages route, which fills the form first
 * (a link from a topic's partition, or the form's own submit). */
async function renderMessages(alive, params) {
  if (params) {
    await loadTopicChoices(params.get('topic') || undefined);
    if (!alive()) return;
    if (params.has('partition')) fillPartitions(params.get('partition'));
    if (params.has('offset')) { $('msg-mode').value = 'offset'; $('msg-offset').value = params.get('offset'); }
    else if (params.has('time')) {
      $('msg-mode').value = 'time';
      const d = new Date(Number(params.get('time')));
      if (isNum(d.getTime())) $('msg-time').value = fmtDate(d.getTime()) + 'T' + fmtTime(d.getTime());
    } else {
      $('msg-mode').value = 'latest';
    }
    $('msg-q').value = params.get('q') || '';
    if (params.has('limit')) $('msg-limit').value = params.get('limit');
    syncModeInputs();
  } else if (!msgState.topics.length) {
    await loadTopicChoices();
    if (!alive()) return;
  }
  const { topic, q } = messagesQuery();
  const list = $('messages-list');
  if (!topic) { clear(list).appendChild(el('p', { class: 'muted' }, 'No topics.')); return; }
  const body = await api('/api/topics/' + enc(topic) + '/messages?' + q.toString());
  if (!alive()) return;
  const msgs = arr(body.messages).map(obj);
  msgState.nextOffset = isNum(body.next_offset) ? body.next_offset : null;
  $('msg-next').disabled = msgState.nextOffset === null || (isNum(body.high) && msgState.nextOffset >= body.high);
  $('messages-info').textContent = topic + ' / partition ' + q.get('partition') + ' · ' + msgs.length + ' messages' +
    (isNum(body.scanned) ? ' · scanned ' + fmtInt(body.scanned) : '') +
    (isNum(body.high) ? ' · high watermark ' + fmtInt(body.high) : '') +
    (msgState.nextOffset !== null ? ' · next offset ' + fmtInt(msgState.nextOffset) : '');
  clear(list);
  if (!msgs.length) { list.appendChild(el('p', { class: 'muted card' }, 'No messages.')); return; }
  for (const m of msgs) {
    const pv = prettyValue(m.value);
    const headers = arr(m.headers).map(obj);
    list.appendChild(el('article', { class: 'card msg-row', 'data-offset': str(m.offset) },
      el('div', { class: 'msg-meta' },
        el('span', { class: 'badge' }, 'offset ' + str(m.offset)),
        el('span', { class: 'muted' }, 'p' + str(m.partition)),
        el('span', { class: 'muted', title: str(m.timestamp) }, fmtDateTime(m.timestamp)),
        el('span', {}, 'key ', m.key === null || m.key === undefined ? el('span', { class: 'muted' }, 'null') : el('code', { class: 'mono' }, str(m.key))),
        headers.length ? el('span', { class: 'muted' }, headers.map((h) => str(h.key) + '=' + str(h.value)).join(', ')) : null),
      el('pre', { class: 'msg-value' + (pv.json ? ' json' : '') }, pv.text)));
  }
}

// --- groups ------------------------------------------------------------------

function stateBadge(s) {
  const v = str(s);
  return el('span', { class: 'badge state-' + v.replace(/[^A-Za-z]/g, '').toLowerCase() }, v || '?');
}

async function renderGroups(alive) {
  const body = await api('/api/groups');
  if (!alive()) return;
  const groups = arr(body.groups).map(obj).sort((a, b) => str(a.group_id).localeCompare(str(b.group_id)));
  const tb = clear($('groups-table').tBodies[0]);
  let lag = 0;
  for (const g of groups) {
    const id = str(g.group_id);
    const href = '#/groups/' + enc(id);
    lag += num(g.lag);
    tb.appendChild(el('tr', { class: 'group-row clickable', 'data-group': id, onclick: () => { location.hash = href; } },
      el('td', {}, el('a', { href, class: 'mono' }, id)),
      el('td', {}, stateBadge(g.state)),
      el('td', {}, str(g.protocol_type) || '—'),
      el('td', { class: 'num' }, fmtInt(g.members)),
      el('td', { class: 'num' + (num(g.lag) > 0 ? ' warn-text' : '') }, isNum(g.lag) ? fmtInt(g.lag) : '—')));
  }
  if (!groups.length) tb.appendChild(el('tr', {}, el('td', { colspan: 5, class: 'muted' }, 'no consumer groups')));
  $('groups-info').textContent = groups.length + ' groups · total lag ' + fmtInt(lag);
}

async function renderGroup(alive, id) {
  $('group-title').textContent = id;
  const body = await api('/api/groups/' + enc(id));
  if (!alive()) return;
  $('group-info').textContent = 'state ' + str(body.state) + ' · protocol ' + (str(body.protocol) || '—') +
    ' (' + (str(body.protocol_type) || '—') + ') · coordinator ' + str(body.coordinator);
  const mtb = clear($('members-table').tBodies[0]);
  const members = arr(body.members).map(obj);
  for (const m of members) {
    const byTopic = new Map();
    for (const a of arr(m.assignments).map(obj)) {
      const t = str(a.topic);
      if (!byTopic.has(t)) byTopic.set(t, []);
      byTopic.get(t).push(num(a.partition));
    }
    const chips = [...byTopic.entries()].map(([t, ps]) =>
      el('span', { class: 'chip' }, el('span', { class: 'mono' }, t), ': ' + ps.sort((a, b) => a - b).join(', ')));
    mtb.appendChild(el('tr', { class: 'member-row' },
      el('td', { class: 'mono wrap' }, str(m.member_id)),
      el('td', { class: 'mono' }, str(m.client_id)),
      el('td', { class: 'mono' }, str(m.host)),
      el('td', {}, chips.length ? chips : el('span', { class: 'muted' }, 'none'))));
  }
  if (!members.length) mtb.appendChild(el('tr', {}, el('td', { colspan: 4, class: 'muted' }, 'no active members')));
  const offsets = arr(body.offsets).map(obj).sort((a, b) => str(a.topic).localeCompare(str(b.topic)) || num(a.partition) - num(b.partition));
  const maxLag = Math.max(1, ...offsets.map((o) => num(o.lag)));
  const otb = clear($('offsets-table').tBodies[0]);
  for (const o of offsets) {
    const bar = el('div', { class: 'bar-fill lag' });
    bar.style.width = (100 * Math.max(0, num(o.lag)) / maxLag).toFixed(1) + '%';
    otb.appendChild(el('tr', { class: 'offset-row' },
      el('td', { class: 'mono' }, str(o.topic)),
      el('td', { class: 'num' }, fmtInt(o.partition)),
      el('td', { class: 'num' }, fmtInt(o.committed)),
      el('td', { class: 'num' }, fmtInt(o.high)),
      el('td', { class: 'num' + (num(o.lag) > 0 ? ' warn-text' : '') }, fmtInt(o.lag)),
      el('td', { class: 'bar-col wide' }, el('div', { class: 'bar-track' }, bar))));
  }
  if (!offsets.length) otb.appendChild(el('tr', {}, el('td', { colspan: 6, class: 'muted' }, 'no committed offsets')));
  $('group-lag').textContent = 'total lag ' + fmtInt(body.lag);
}

// --- brokers -----------------------------------------------------------------

async function renderBrokers(alive) {
  const body = await api('/api/cluster');
  if (!alive()) return;
  const brokers = arr(body.brokers).map(obj).sort((a, b) => num(a.id) - num(b.id));
  $('cluster-info').textContent = 'cluster ' + (str(body.cluster_id) || '—') + ' · controller ' + str(body.controller_id) +
    ' · ' + brokers.length + (brokers.length === 1 ? ' broker' : ' brokers');
  const tb = clear($('brokers-table').tBodies[0]);
  for (const b of brokers) {
    tb.appendChild(el('tr', { class: 'broker-row' },
      el('td', { class: 'num' }, fmtInt(b.id)),
      el('td', { class: 'mono' }, str(b.host)),
      el('td', { class: 'num' }, str(b.port)),
      el('td', {}, b.id === body.controller_id ? el('span', { class: 'badge good' }, 'controller') : null)));
  }
  if (!brokers.length) tb.appendChild(el('tr', {}, el('td', { colspan: 4, class: 'muted' }, 'no brokers')));
}

// ---------------------------------------------------------------------------
// Routing

let currentPage = null;
let currentRoute = null;
let consoleTimer = null;
let consoleBusy = false;

function parseRoute() {
  let h = location.hash.replace(/^#/, '');
  if (!h.startsWith('/')) h = '/' + h;
  const qi = h.indexOf('?');
  const path = qi >= 0 ? h.slice(0, qi) : h;
  const params = new URLSearchParams(qi >= 0 ? h.slice(qi + 1) : '');
  const parts = path.split('/').filter((p) => p.length);
  const dec = (s) => { try { return decodeURIComponent(s); } catch (e) { return s; } };
  const rest = parts.slice(1).map(dec).join('/');
  switch (parts[0]) {
    case undefined: return { page: 'business', nav: 'business' };
    case 'topics': return rest ? { page: 'topic', nav: 'topics', arg: rest } : { page: 'topics', nav: 'topics' };
    case 'messages': return { page: 'messages', nav: 'messages', params };
    case 'groups': return rest ? { page: 'group', nav: 'groups', arg: rest } : { page: 'groups', nav: 'groups' };
    case 'brokers': return { page: 'brokers', nav: 'brokers' };
    default: return { page: 'business', nav: 'business' };
  }
}

const PAGE_ERRORS = { topics: 'topics-error', topic: 'topic-error', messages: 'messages-error', groups: 'groups-error', group: 'group-error', brokers: 'brokers-error' };

/* Loads the console page on show.  first: a new route or a user action,
 * which supersedes a load under way; otherwise the periodic refresh, which
 * is skipped while one runs.  A superseded load writes nothing. */
let consoleSeq = 0;
async function refreshConsole(first) {
  const r = currentRoute;
  if (!r || r.page === 'business') return;
  if (!first && consoleBusy) return;
  // Messages refresh by themselves only when showing the newest ones.
  if (!first && r.page === 'messages' && $('msg-mode').value !== 'latest') return;
  const seq = ++consoleSeq;
  const alive = () => seq === consoleSeq && r === currentRoute;
  consoleBusy = true;
  try {
    if (r.page === 'topics') await renderTopics(alive);
    else if (r.page === 'topic') await renderTopic(alive, r.arg);
    else if (r.page === 'messages') await renderMessages(alive, first ? r.params : null);
    else if (r.page === 'groups') await renderGroups(alive);
    else if (r.page === 'group') await renderGroup(alive, r.arg);
    else if (r.page === 'brokers') await renderBrokers(alive);
    if (alive()) showError(PAGE_ERRORS[r.page], null);
  } catch (e) {
    if (alive()) {
      const what = e.status === 404 ? 'Not found: ' : 'Could not load: ';
      showError(PAGE_ERRORS[r.page], what + e.message);
    }
  } finally {
    if (seq === consoleSeq) consoleBusy = false;
  }
}

function route() {
  const r = parseRoute();
  currentRoute = r;
  currentPage = r.page;
  for (const sec of document.querySelectorAll('section.page')) sec.hidden = sec.getAttribute('data-page') !== r.page;
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.getAttribute('data-page') === r.nav);
  if (consoleTimer) { clearInterval(consoleTimer); consoleTimer = null; }
  $('tooltip').hidden = true;
  if (r.page === 'business') {
    scheduleRender(true);
    return;
  }
  refreshConsole(true);
  consoleTimer = setInterval(() => { if (!document.hidden) refreshConsole(false); }, CONSOLE_REFRESH_MS);
}

// ---------------------------------------------------------------------------
// Wiring

function init() {
  for (const b of document.querySelectorAll('#window-select button')) {
    b.addEventListener('click', async () => {
      const win = b.getAttribute('data-window');
      if (!WINDOW_MS[win] || win === state.win) return;
      state.win = win;
      for (const x of document.querySelectorAll('#window-select button')) x.classList.toggle('active', x === b);
      scheduleRender(true);
      try { await loadWindow(win); showError('business-error', null); } catch (e) { showError('business-error', 'KPIs could not be loaded: ' + e.message); }
      scheduleRender(true);
    });
  }
  $('order-form').addEventListener('submit', (ev) => { ev.preventDefault(); lookupOrder(); });
  $('rec-form').addEventListener('submit', (ev) => { ev.preventDefault(); lookupRecs(); });
  $('rec-kind').addEventListener('change', () => {
    $('rec-input').placeholder = $('rec-kind').value === 'user' ? 'user id, e.g. u000042' : 'product id, e.g. p00042';
  });

  $('topics-filter').addEventListener('input', () => refreshConsole(true));
  $('topics-internal').addEventListener('change', () => refreshConsole(true));
  $('configs-defaults').addEventListener('change', () => refreshConsole(true));

  $('messages-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const { topic, q } = messagesQuery();
    if (!q.get('q')) q.delete('q');
    const target = '#/messages?topic=' + enc(topic) + '&' + q.toString();
    if (location.hash === target) refreshConsole(true); else location.hash = target;
  });
  $('msg-topic').addEventListener('change', () => fillPartitions('0'));
  $('msg-mode').addEventListener('change', syncModeInputs);
  $('msg-next').addEventListener('click', () => {
    if (msgState.nextOffset === null) return;
    $('msg-mode').value = 'offset';
    $('msg-offset').value = String(msgState.nextOffset);
    syncModeInputs();
    $('messages-form').requestSubmit();
  });

  // Charts are drawn at their pixel size: draw again when it changes.
  if (window.ResizeObserver) {
    let lastW = 0;
    new ResizeObserver((entries) => {
      const w = Math.round(entries[0].contentRect.width);
      if (w !== lastW) { lastW = w; scheduleRender(false, 'kpi'); }
    }).observe($('chart-gmv'));
  }
  // Relative times ("12 s ago") age; the open window's label changes.
  setInterval(() => { if (currentPage === 'business') scheduleRender(false, 'all'); }, 10000);
  // Recent orders and popular products are also polled, in case no SSE
  // order event arrives (a quiet shop or a stream without them).
  setInterval(() => {
    if (currentPage === 'business' && !document.hidden) {
      Promise.allSettled([loadOrders(), loadPopular()]).then(() => { scheduleRender(false, 'orders'); scheduleRender(false, 'popular'); });
    }
  }, 10000);

  window.addEventListener('hashchange', route);
  route();
  // Subscribe first, so that nothing published while the initial state
  // loads is missed.
  connectStream();
  loadBusiness();
  fillRecPlaceholder();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();

})();
