#!/usr/bin/env node
// tests/e2e/dashboard.mjs: the dashboard end to end, in headless Chromium.
//
// Starts `shopstream demo` (broker + processors + simulator + serve) on free
// ports with its own data directory, opens the dashboard in Debian's
// Chromium driven by playwright-core, and checks the DOM contract of
// spec/api.md against the HTTP API: KPI cards show numbers, they change as
// events arrive, they equal the API's for the same window, charts and the
// funnel are drawn, an order lookup and a product's recommendations show,
// data is shown as text (a hostile product id and order id are produced into
// the demo's broker), the console pages list topics, messages, groups and
// brokers, and the page loads nothing from elsewhere.  Screenshots (and
// the demo's output, demo.log) go to --out.  Last, the demo is stopped with
// SIGINT and must exit 0 within 30 s.
//
//   cd tests/e2e && npm ci            # once: playwright-core, pinned
//   node tests/e2e/dashboard.mjs --bin bin/shopstream --out /tmp/shots
//
// SHOPSTREAM_DEMO_ARGS adds arguments to the demo command line (for example
// a simulator rate).  --url URL tests a server that is already running (such
// as tests/e2e/fake_api.py) instead of starting the demo.  Prints one
// "ok N - ..." / "not ok N - ..." line per check and ends with
// "N passed, N failed"; exits 1 on any failure and never runs past 240 s.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'];
const OVERALL_TIMEOUT_MS = 240_000;
const STARTUP_TIMEOUT_MS = 60_000;
const CHANGE_TIMEOUT_MS = 90_000;
const PREVIOUS_TIMEOUT_MS = 80_000;
const STOP_TIMEOUT_MS = 30_000;
const WINDOW_1M = 60_000;
const XSS_PRODUCT = '<img src=x onerror="window.__xss=\'product\'">';
const XSS_ORDER = 'e2e-<img src=x onerror="window.__xss=\'order\'"> ?&#%';

// Card id -> field of the shop.kpis value (spec/api.md, DOM contract).
const CARDS = {
  'kpi-gmv': 'gmv', 'kpi-orders': 'orders', 'kpi-aov': 'aov', 'kpi-uv': 'uv',
  'kpi-conversion': 'conversion', 'kpi-pv': 'pv', 'kpi-refunds': 'refunds',
};

// --- arguments ---------------------------------------------------------------

function usage(msg) {
  if (msg) console.error('dashboard.mjs: ' + msg);
  console.error('usage: node tests/e2e/dashboard.mjs --bin PATH_TO_shopstream --out DIR [--url URL]');
  process.exit(2);
}

const opts = { bin: null, out: null, url: null };
{
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') usage();
    if (!['--bin', '--out', '--url'].includes(a)) usage('unknown argument ' + a);
    if (i + 1 >= argv.length) usage(a + ' needs a value');
    opts[a.slice(2)] = argv[++i];
  }
  if (!opts.out) usage('--out is required');
  if (!opts.url && !opts.bin) usage('--bin is required');
  if (opts.bin) opts.bin = path.resolve(opts.bin);
  fs.mkdirSync(opts.out, { recursive: true });
}

// playwright-core is installed into tests/e2e/node_modules by `npm ci`.
let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  console.log('not ok 1 - playwright-core is installed # run: cd tests/e2e && npm ci (' + e.message.split('\n')[0] + ')');
  console.log('0 passed, 1 failed');
  process.exit(1);
}

// --- reporting ---------------------------------------------------------------

let passed = 0;
let failed = 0;
let checkNo = 0;

function check(ok, name, detail) {
  checkNo++;
  if (ok) {
    passed++;
    console.log(`ok ${checkNo} - ${name}`);
  } else {
    failed++;
    console.log(`not ok ${checkNo} - ${name}` + (detail ? ` # ${oneLine(detail)}` : ''));
  }
  return !!ok;
}

function oneLine(s) {
  s = String(s).replace(/\s+/g, ' ');
  return s.length > 600 ? s.slice(0, 600) + '…' : s;
}

// A failed step that the rest of the test depends on.
class Fatal extends Error {}

function need(ok, name, detail) {
  if (!check(ok, name, detail)) throw new Fatal(name);
}

// --- processes ---------------------------------------------------------------

let demo = null;          // the demo's ChildProcess
let demoExited = null;    // {code, signal} once it exited
let demoOutput = '';
let browser = null;
let dataDir = null;
let finishing = false;

function noteOutput(chunk) {
  demoOutput += chunk.toString();
  if (demoOutput.length > 400_000) demoOutput = demoOutput.slice(-300_000);
}

function printDemoOutput() {
  if (!demo) return;
  const lines = demoOutput.split('\n');
  console.log('# --- demo output (last 200 lines) ---');
  for (const l of lines.slice(-200)) console.log('# ' + l);
  console.log('# --- end of demo output ---');
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function withTimeout(promise, ms, what) {
  let timer;
  try {
    return await Promise.race([promise, new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(what + ' timed out')), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

async function closeBrowser() {
  if (!browser) return;
  const b = browser;
  browser = null;
  try { await withTimeout(b.close(), 10_000, 'closing the browser'); } catch (e) { /* it is being torn down */ }
}

function killDemo() {
  if (demo && !demoExited) {
    try { demo.kill('SIGKILL'); } catch (e) { /* already gone */ }
  }
}

function removeDataDir() {
  if (dataDir) {
    try { fs.rmSync(dataDir, { recursive: true, force: true }); } catch (e) { /* best effort */ }
    dataDir = null;
  }
}

async function finish(extraFailure) {
  if (finishing) return;
  finishing = true;
  if (extraFailure) check(false, extraFailure);
  await closeBrowser();
  if (failed) printDemoOutput();
  killDemo();
  if (demo) {
    try { fs.writeFileSync(path.join(opts.out, 'demo.log'), demoOutput); } catch (e) { /* best effort */ }
  }
  removeDataDir();
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

const overall = setTimeout(() => { finish('the whole test finished within 240 s'); }, OVERALL_TIMEOUT_MS);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => finish('interrupted by ' + sig));
process.on('exit', () => { killDemo(); });

// --- HTTP --------------------------------------------------------------------

let origin = null;

async function getJSON(p) {
  const res = await fetch(origin + p, { signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  let body = null;
  try { body = JSON.parse(text); } catch (e) { /* reported below */ }
  if (!res.ok) {
    const err = new Error(`GET ${p}: HTTP ${res.status} ${text.slice(0, 200)}`);
    err.status = res.status;
    throw err;
  }
  if (body === null) throw new Error(`GET ${p}: not JSON: ${text.slice(0, 200)}`);
  return body;
}

async function tryJSON(p) {
  try { return await getJSON(p); } catch (e) { return null; }
}

// Polls fn until it returns a truthy value; null when the time is up.
async function waitFor(fn, timeoutMs, intervalMs = 500) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    let v = null;
    try { v = await fn(); } catch (e) { v = null; }
    if (v) return v;
    if (Date.now() >= end) return null;
    if (demoExited) return null;
    await sleep(intervalMs);
  }
}

// --- the demo ----------------------------------------------------------------

async function startDemo() {
  const kport = await freePort();
  let hport = await freePort();
  while (hport === kport) hport = await freePort();
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'shopstream-e2e-'));
  const extra = (process.env.SHOPSTREAM_DEMO_ARGS || '').split(/\s+/).filter(Boolean);
  const args = ['demo', '--listen', `127.0.0.1:${kport}`, '--http', `127.0.0.1:${hport}`, '--data-dir', dataDir, ...extra];
  console.log(`# starting ${opts.bin} ${args.join(' ')}`);
  demo = spawn(opts.bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  demo.stdout.on('data', noteOutput);
  demo.stderr.on('data', noteOutput);
  demo.on('error', (e) => { noteOutput(`spawn error: ${e.message}\n`); demoExited = { code: null, signal: null, error: e }; });
  demo.on('exit', (code, signal) => { demoExited = { code, signal }; });
  origin = `http://127.0.0.1:${hport}`;
  const t0 = Date.now();

  // The demo prints "dashboard: URL" once serve listens (on another port if
  // the one asked for was taken meanwhile; the broker likewise).
  const findUrl = () => {
    const m = demoOutput.match(/dashboard:?\s*(https?:\/\/[^\s"'<>]+)/i) || demoOutput.match(/(https?:\/\/[^\s"'<>]+)/);
    return m ? m[1] : null;
  };
  const printed = await waitFor(findUrl, STARTUP_TIMEOUT_MS, 200);
  check(printed, 'demo prints the dashboard URL', demoExited ? `demo exited: ${JSON.stringify(demoExited)}` : 'no URL in its output');
  let url = printed || origin + '/';
  origin = new URL(url).origin;
  if (!printed && !url.endsWith('/')) url += '/';
  const b = demoOutput.match(/broker on [^\s:]+:(\d+)/);
  const brokerPort = b ? Number(b[1]) : kport;
  console.log(`# dashboard ${url}, broker port ${brokerPort}`);

  const latest = await waitFor(async () => {
    const body = await tryJSON('/api/kpis/latest?window=1m');
    return body && body.current ? body : null;
  }, Math.max(5_000, STARTUP_TIMEOUT_MS - (Date.now() - t0)), 1000);
  need(latest, 'demo serves a current 1m KPI window within 60 s',
    demoExited ? `demo exited early: ${JSON.stringify(demoExited)}` : 'no current window');
  return { url, kport: brokerPort };
}

async function stopDemo() {
  if (!demo || demoExited) {
    check(false, 'demo still running at the end', JSON.stringify(demoExited));
    return;
  }
  demo.kill('SIGINT');
  const t0 = Date.now();
  while (!demoExited && Date.now() - t0 < STOP_TIMEOUT_MS) await sleep(100);
  if (!demoExited) {
    check(false, 'demo exits within 30 s of SIGINT', 'still running; killed');
    killDemo();
    return;
  }
  check(demoExited.code === 0, `demo exits 0 on SIGINT (${((Date.now() - t0) / 1000).toFixed(1)} s)`,
    `code ${demoExited.code} signal ${demoExited.signal}`);
}

// Produces lines "key<TAB>value" to a topic with the console producer.
function produce(kport, topic, lines) {
  return new Promise((resolve) => {
    const p = spawn(opts.bin, ['produce', topic, '--key-separator', '\\t', '--bootstrap', `127.0.0.1:${kport}`, '--timeout-ms', '20000'],
      { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (c) => { out += c; });
    p.stderr.on('data', (c) => { out += c; });
    const timer = setTimeout(() => p.kill('SIGKILL'), 30_000);
    p.on('error', (e) => { clearTimeout(timer); resolve({ code: -1, out: e.message }); });
    p.on('exit', (code) => { clearTimeout(timer); resolve({ code, out }); });
    p.stdin.end(lines.join('\n') + '\n');
  });
}

// --- page helpers ------------------------------------------------------------

function readKpis(page) {
  return page.evaluate((ids) => {
    const box = document.getElementById('kpis');
    const cards = {};
    for (const id of ids) {
      const c = document.getElementById(id);
      if (!c) { cards[id] = null; continue; }
      const v = c.querySelector('.kpi-value');
      const p = c.querySelector('.prev');
      cards[id] = {
        value: c.getAttribute('data-value'),
        text: v ? v.textContent : c.textContent,
        prev: p ? p.getAttribute('data-value') : null,
        prevText: p ? p.textContent : null,
      };
    }
    return { start: box && box.getAttribute('data-window-start'), window: box && box.getAttribute('data-window'), cards };
  }, Object.keys(CARDS));
}

const isNumStr = (s) => typeof s === 'string' && s.trim() !== '' && Number.isFinite(Number(s));

// Compares card values (field 'value' or 'prev') with a shop.kpis value K;
// returns a list of mismatches.
function compareCards(snap, K, which) {
  const bad = [];
  for (const [id, field] of Object.entries(CARDS)) {
    const c = snap.cards[id];
    const pageV = c ? c[which] : null;
    const apiV = K ? K[field] : undefined;
    if (apiV === undefined || apiV === null) {
      if (pageV !== '' && pageV !== null) bad.push(`${id}: page ${pageV}, API has none`);
    } else if (!isNumStr(pageV) || Number(pageV) !== apiV) {
      bad.push(`${id}: page ${JSON.stringify(pageV)}, API ${apiV}`);
    }
  }
  return bad;
}

async function count(page, selector) {
  return page.locator(selector).count();
}

// --- the test ----------------------------------------------------------------

async function run() {
  let url, kport = null;
  if (opts.url) {
    url = opts.url;
    origin = new URL(url).origin;
    console.log(`# testing the server at ${url}`);
    const latest = await waitFor(async () => {
      const b = await tryJSON('/api/kpis/latest?window=1m');
      return b && b.current ? b : null;
    }, STARTUP_TIMEOUT_MS, 1000);
    need(latest, 'server has a current 1m KPI window');
  } else {
    need(fs.existsSync(opts.bin), `binary ${opts.bin} exists`);
    ({ url, kport } = await startDemo());
  }

  browser = await withTimeout(chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS }),
    60_000, 'launching Chromium');
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const pageErrors = [];
  const foreign = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    // Failed fetches (the 404 of an unknown order) are logged by Chromium itself.
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) pageErrors.push('console: ' + m.text());
  });
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(origin + '/') && !u.startsWith('data:') && u !== 'about:blank') foreign.push(u);
  });

  await page.goto(url, { waitUntil: 'load', timeout: 30_000 });
  check(/shopstream/i.test(await page.title()), 'page title names shopstream', await page.title());
  const navText = (await page.locator('nav').first().textContent()) || '';
  check(['Business', 'Topics', 'Messages', 'Groups', 'Brokers'].every((w) => navText.includes(w)),
    'top nav has Business | Topics | Messages | Groups | Brokers', navText);

  // 1. KPI cards show numbers.
  const first = await waitFor(async () => {
    const s = await readKpis(page);
    const ok = isNumStr(s.start) && Object.values(s.cards).every((c) => c && isNumStr(c.value) && /\d/.test(c.text));
    return ok ? s : null;
  }, 20_000);
  need(first, 'KPI cards show numbers', JSON.stringify(await readKpis(page)));
  check(first.window === '1m', '#kpis data-window is 1m', first.window);
  console.log('# first KPIs: ' + Object.entries(first.cards).map(([k, c]) => `${k}=${c.text}`).join(' '));

  // 2. They change as events arrive.
  const changed = await waitFor(async () => {
    const s = await readKpis(page);
    return s.start !== first.start || s.cards['kpi-orders'].value !== first.cards['kpi-orders'].value ||
      s.cards['kpi-pv'].value !== first.cards['kpi-pv'].value ? s : null;
  }, CHANGE_TIMEOUT_MS);
  check(changed, 'KPI cards change as events arrive', 'no change in 90 s');
  if (changed) {
    const what = changed.start !== first.start ? `window ${first.start} -> ${changed.start}`
      : `orders ${first.cards['kpi-orders'].value} -> ${changed.cards['kpi-orders'].value}, pv ${first.cards['kpi-pv'].value} -> ${changed.cards['kpi-pv'].value}`;
    console.log('# changed: ' + what);
  }

  // A window with a sale carries its currency: GMV is shown as money.
  const sold = await waitFor(async () => {
    const s = await readKpis(page);
    return Number(s.cards['kpi-orders'].value) > 0 ? s : null;
  }, CHANGE_TIMEOUT_MS);
  const gmvText = sold ? sold.cards['kpi-gmv'].text : '(no window with an order)';
  check(/^[^\d\s]+\s?\d{1,3}(,\d{3})*(\.\d+)?$/.test(gmvText.trim()), 'GMV is formatted as money (e.g. £1,234.56)', gmvText);

  // 3. The numbers on the page equal the API's for the same window.
  let lastBad = null;
  let same = false;
  for (let attempt = 0; attempt < 20 && !same; attempt++) {
    if (attempt) await sleep(300 + 100 * attempt);
    const snap = await readKpis(page);
    const start = Number(snap.start);
    const body = await tryJSON(`/api/kpis?window=1m&from=${start}&to=${start + 1}`);
    const K = body && Array.isArray(body.kpis) ? body.kpis.find((k) => k.start === start) : null;
    if (!K) { lastBad = [`API has no 1m window starting at ${start}`]; continue; }
    const again = await readKpis(page);
    if (again.start !== snap.start) { lastBad = ['window moved on during the comparison']; continue; }
    lastBad = compareCards(again, K, 'value');
    same = lastBad.length === 0;
  }
  check(same, 'KPI cards equal /api/kpis for the window in #kpis[data-window-start]', (lastBad || []).join('; '));

  // The previous-window figures are compared once there is a previous
  // window: on a fresh demo that takes up to a minute and the lateness.
  const hasPrev = await waitFor(async () => {
    const b = await tryJSON('/api/kpis/latest?window=1m');
    return b && b.previous && b.current;
  }, PREVIOUS_TIMEOUT_MS, 1000);
  check(hasPrev, 'a previous 1m window follows within 80 s');
  let prevSame = false;
  for (let attempt = 0; attempt < 15 && !prevSame; attempt++) {
    if (attempt) await sleep(400);
    const snap = await readKpis(page);
    const pstart = Number(snap.start) - WINDOW_1M;
    const body = await tryJSON(`/api/kpis?window=1m&from=${pstart}&to=${pstart + 1}`);
    if (!body) { lastBad = ['API did not answer']; continue; }
    const K = Array.isArray(body.kpis) ? body.kpis.find((k) => k.start === pstart) || null : null;
    lastBad = compareCards(snap, K || {}, 'prev');
    prevSame = lastBad.length === 0;
  }
  check(prevSame, 'previous-window values (.prev) equal the API\'s previous window', (lastBad || []).join('; '));

  // 4. Charts and funnel are SVG with content.
  const shapes = await page.evaluate(() => {
    const info = (id, sel) => {
      const e = document.getElementById(id);
      return e ? { tag: e.tagName.toLowerCase(), n: e.querySelectorAll(sel).length } : null;
    };
    const f = document.getElementById('funnel');
    return {
      gmv: info('chart-gmv', 'path, rect, circle, polyline'),
      orders: info('chart-orders', 'path, rect, circle, polyline'),
      funnelRects: f ? f.querySelectorAll('svg rect').length : 0,
      funnelText: f ? f.textContent : '',
    };
  });
  check(shapes.gmv && shapes.gmv.tag === 'svg' && shapes.gmv.n > 0, '#chart-gmv is an SVG chart with shapes', JSON.stringify(shapes.gmv));
  check(shapes.orders && shapes.orders.tag === 'svg' && shapes.orders.n > 0, '#chart-orders is an SVG chart with shapes', JSON.stringify(shapes.orders));
  check(shapes.funnelRects >= 4 && /%/.test(shapes.funnelText) && /purchase/i.test(shapes.funnelText),
    '#funnel draws four steps with drop-off %', `${shapes.funnelRects} rects; ${shapes.funnelText.slice(0, 200)}`);

  // 5. Top products, refunds and alerts panels.
  const topRows = await waitFor(async () => (await count(page, '#top-products tbody tr')) > 0, 10_000);
  check(topRows, '#top-products is a table with rows');
  check(((await page.locator('#refunds').textContent()) || '').trim().length > 0, '#refunds shows figures');
  const apiAlerts = await tryJSON('/api/alerts?limit=50');
  if (apiAlerts && Array.isArray(apiAlerts.alerts) && apiAlerts.alerts.length) {
    const shown = await waitFor(async () => (await count(page, '#alerts .alert-row')) > 0, 10_000);
    check(shown, `#alerts lists alerts (API has ${apiAlerts.alerts.length})`);
  } else {
    check(await page.locator('#alerts').count() === 1, '#alerts list present (no alerts yet)');
  }

  // 6. Order lookup.
  const orders = await waitFor(async () => {
    const b = await tryJSON('/api/orders?limit=1');
    return b && Array.isArray(b.orders) && b.orders.length ? b.orders : null;
  }, 30_000);
  if (check(orders, 'API lists an order')) {
    const oid = orders[0].order_id;
    let ok = false, detail = '';
    for (let attempt = 0; attempt < 5 && !ok; attempt++) {
      await page.fill('#order-input', oid);
      await page.click('#order-go');
      const got = await waitFor(() => page.getAttribute('#order-result', 'data-status'), 10_000, 200);
      const api = await tryJSON('/api/orders/' + encodeURIComponent(oid));
      const want = api && api.state ? api.state.status : null;
      detail = `page ${got}, API ${want}`;
      ok = got && got === want;
      if (!ok) await sleep(500);
    }
    check(ok, `order lookup of ${oid} shows the API's status`, detail);
    const hist = await count(page, '#order-result .history-row');
    check(hist >= 1, `order lookup shows history rows (${hist})`);
  }

  // Unknown order, submitted with Enter.
  await page.fill('#order-input', 'no-such-order-' + process.pid);
  await page.press('#order-input', 'Enter');
  const nf = await waitFor(async () => /no such order/i.test((await page.locator('#order-result').textContent()) || ''), 10_000, 200);
  check(nf && !(await page.getAttribute('#order-result', 'data-status')), 'unknown order (Enter) shows "no such order"');

  // 7. Recommendations for a product.
  const recKeys = await waitFor(async () => {
    const b = await tryJSON('/api/recs?kind=product&limit=1');
    return b && Array.isArray(b.keys) && b.keys.length ? b.keys : null;
  }, 45_000, 1000);
  if (check(recKeys, 'API has recommendations for a product')) {
    const pid = recKeys[0];
    let ok = false, detail = '';
    for (let attempt = 0; attempt < 5 && !ok; attempt++) {
      await page.fill('#rec-input', pid);
      await page.click('#rec-go');
      await waitFor(async () => (await count(page, '#rec-result .rec-row')) > 0 ||
        /no recommendations/i.test((await page.locator('#rec-result').textContent()) || ''), 10_000, 200);
      await sleep(200);
      const api = await tryJSON('/api/recs/product/' + encodeURIComponent(pid));
      const want = api && api.value && Array.isArray(api.value.similar) ? api.value.similar.length : null;
      const got = await count(page, '#rec-result .rec-row');
      detail = `page ${got} rows, API ${want}`;
      ok = want !== null && got === want;
      if (!ok) await sleep(500);
    }
    check(ok, `recommendations for ${pid} show one .rec-row per API entry`, detail);
  }

  // Screenshot of the business page, with the lookups filled in.
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(opts.out, 'dashboard.png'), fullPage: true });
  check(fs.statSync(path.join(opts.out, 'dashboard.png')).size > 10_000, `screenshot ${path.join(opts.out, 'dashboard.png')}`);

  // 8. Hostile data is shown as text: a product id and an order id that are
  // HTML, produced into the demo's own broker.
  if (kport) {
    const now = Date.now();
    const lines = [];
    for (let i = 0; i < 300; i++) {
      lines.push('e2e-user\t' + JSON.stringify({ id: `e2e-xss-view-${now}-${i}`, type: 'product_view', ts: now, user_id: 'e2e-user',
        session_id: `e2e-session-${now}`, product_id: XSS_PRODUCT, category: '<b>cat</b>', price: 1234 }));
    }
    const r1 = await produce(kport, 'shop.clicks', lines);
    const order = { id: `e2e-xss-order-${now}`, type: 'order_created', ts: now, order_id: XSS_ORDER, user_id: '<i>e2e</i>',
      items: [{ product_id: XSS_PRODUCT, qty: 1, price: 4321 }], amount: 4321, currency: 'GBP' };
    const r2 = await produce(kport, 'shop.orders', [XSS_ORDER + '\t' + JSON.stringify(order)]);
    if (check(r1.code === 0 && r2.code === 0, 'hostile events produced to the demo', r1.out + r2.out)) {
      const inApi = await waitFor(async () => {
        const b = await tryJSON('/api/kpis/latest?window=1m');
        const top = b && b.current ? b.current.top_products_by_views : null;
        return Array.isArray(top) && top.some((t) => t.product_id === XSS_PRODUCT);
      }, 30_000);
      const onPage = inApi && await waitFor(() => page.evaluate((x) =>
        [...document.querySelectorAll('#top-products button, #top-products td')].some((e) => e.textContent === x), XSS_PRODUCT), 10_000);
      check(onPage, 'an HTML product id shows as text in top products', inApi ? 'not on the page' : 'not in the API\'s top views');
      const orderOk = await waitFor(async () => (await tryJSON('/api/orders/' + encodeURIComponent(XSS_ORDER))), 20_000);
      if (check(orderOk, 'API finds the order with an HTML id (URL-encoded)')) {
        await page.fill('#order-input', XSS_ORDER);
        await page.click('#order-go');
        const st = await waitFor(() => page.getAttribute('#order-result', 'data-status'), 10_000, 200);
        const shownId = await page.evaluate((x) => [...document.querySelectorAll('#order-result *')].some((e) => e.textContent === x), XSS_ORDER);
        check(st === orderOk.state.status && shownId, 'order lookup of an HTML id shows it as text', `status ${st}, id shown ${shownId}`);
      }
    }
  }
  const injected = await page.evaluate(() => ({
    xss: window.__xss === undefined ? null : String(window.__xss),
    imgs: document.querySelectorAll('main img, main script').length,
  }));
  check(injected.xss === null && injected.imgs === 0, 'no markup from data was executed or inserted', JSON.stringify(injected));

  // 9. Console: topics.
  await page.click('nav a[href="#/topics"]');
  const topicRow = await waitFor(async () => (await count(page, '#topics-table tr[data-topic="shop.orders"]')) > 0, 15_000, 300);
  check(topicRow, '#/topics has a row for shop.orders');
  check(await page.evaluate(() => location.hash) === '#/topics', 'nav link routes to #/topics');
  await page.screenshot({ path: path.join(opts.out, 'topics.png'), fullPage: true });
  check(fs.statSync(path.join(opts.out, 'topics.png')).size > 5_000, `screenshot ${path.join(opts.out, 'topics.png')}`);
  if (topicRow) {
    await page.click('#topics-table tr[data-topic="shop.orders"] a');
    const parts = await waitFor(async () => (await count(page, '#partitions-table tr.partition-row')) > 0, 15_000, 300);
    const apiTopic = await tryJSON('/api/topics/shop.orders');
    const want = apiTopic && Array.isArray(apiTopic.partitions) ? apiTopic.partitions.length : -1;
    const got = await count(page, '#partitions-table tr.partition-row');
    check(parts && got === want, `#/topics/shop.orders lists its partitions (${got}, API ${want})`);
  }

  // Messages of shop.orders partition 0.
  await page.goto(url.replace(/#.*$/, '') + '#/messages?topic=shop.orders&partition=0');
  const msgs = await waitFor(async () => (await count(page, '#messages-list .msg-row')) > 0, 15_000, 300);
  check(msgs, '#/messages shows messages of shop.orders partition 0');

  // Groups.
  await page.click('nav a[href="#/groups"]');
  const groups = await waitFor(async () => (await count(page, '#groups-table tr.group-row')) > 0, 15_000, 300);
  check(groups, '#/groups lists at least one group');
  if (groups) {
    const apiGroups = await tryJSON('/api/groups');
    const withOffsets = apiGroups && Array.isArray(apiGroups.groups)
      ? (apiGroups.groups.find((g) => g.members > 0) || apiGroups.groups[0]) : null;
    if (withOffsets) {
      await page.goto(url.replace(/#.*$/, '') + '#/groups/' + encodeURIComponent(withOffsets.group_id));
      const detail = await waitFor(async () => (await count(page, '#offsets-table tr.offset-row')) +
        (await count(page, '#members-table tr.member-row')) > 0, 15_000, 300);
      check(detail, `#/groups/${withOffsets.group_id} shows members or offsets with lag`);
    }
  }

  // Brokers.
  await page.click('nav a[href="#/brokers"]');
  const brokers = await waitFor(async () => (await count(page, '#brokers-table tr.broker-row')) > 0, 15_000, 300);
  check(brokers, '#/brokers lists the broker');

  // One /metrics for the whole demo: broker, processors and group lag.
  const metrics = await (await fetch(origin + '/metrics', { signal: AbortSignal.timeout(10_000) })).text();
  for (const family of ['shopstream_broker_requests_total', 'shopstream_broker_log_size_bytes',
    'shopstream_broker_flush_seconds_bucket', 'shopstream_processor_events_total',
    'shopstream_processor_dead_letters_total', 'shopstream_processor_late_events_total',
    'shopstream_consumer_group_lag']) {
    check(new RegExp('^' + family + '[{ ]', 'm').test(metrics), `/metrics of the demo has ${family}`);
  }

  check(pageErrors.length === 0, 'no script errors on the page', pageErrors.join(' | '));
  check(foreign.length === 0, 'the page loads nothing from other origins', foreign.join(' '));
  await closeBrowser();
}

let fatal = false;
try {
  await run();
} catch (e) {
  fatal = true;
  if (!(e instanceof Fatal)) check(false, 'test ran without an exception', e && e.stack ? e.stack : String(e));
}
// After a failure the rest is not worth waiting for: finish() kills the demo.
if (!fatal && demo && !finishing) await stopDemo();
clearTimeout(overall);
await finish();
