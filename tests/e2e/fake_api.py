#!/usr/bin/env python3
"""tests/e2e/fake_api.py: a development stand-in for `shopstream serve`.

Serves the dashboard assets from src/serve/assets and answers the HTTP API of
spec/api.md with data from a small in-process shop simulation, including the
Server-Sent Events stream, so the page and tests/e2e/dashboard.mjs can be
worked on without the real server:

    python3 tests/e2e/fake_api.py --port 8099 [--hostile]
    node tests/e2e/dashboard.mjs --url http://127.0.0.1:8099/ --out /tmp/shots

--hostile puts markup and script into ids, messages and topic names, to see
that the page shows data as text.  Dev-only: it is not part of any test suite
and is never run by `make test`.
"""

import argparse
import collections
import json
import os
import queue
import random
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
ASSETS = os.path.normpath(os.path.join(HERE, '..', '..', 'src', 'serve', 'assets'))
SIZES = {'1m': 60_000, '1h': 3_600_000, '1d': 86_400_000}
CTYPES = {'.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
          '.css': 'text/css; charset=utf-8'}

XSS = '<img src=x onerror="window.__xss=1">'


def now_ms():
    return int(time.time() * 1000)


class Window:
    """The aggregates of one event-time window, as the analytics processor keeps them."""

    def __init__(self, win, start):
        self.win, self.start = win, start
        self.gmv = self.orders = self.paid = self.refunds = self.pv = self.late = 0
        self.users, self.buyers = set(), set()
        self.funnel = [set(), set(), set(), set()]
        self.units, self.views = collections.Counter(), collections.Counter()

    def value(self, watermark):
        end = self.start + SIZES[self.win]
        uv = len(self.users)
        return {
            'window': self.win, 'start': self.start, 'end': end, 'currency': 'GBP',
            'gmv': self.gmv, 'orders': self.orders,
            'aov': (self.gmv + self.orders // 2) // self.orders if self.orders else 0,
            'paid_revenue': self.paid, 'refunds': self.refunds, 'net_revenue': self.paid - self.refunds,
            'pv': self.pv, 'uv': uv,
            'conversion': round(len(self.buyers) / uv, 6) if uv else 0,
            'funnel': {k: len(s) for k, s in zip(('product_view', 'add_to_cart', 'checkout', 'purchase'), self.funnel)},
            'top_products_by_units': [{'product_id': p, 'units': n} for p, n in self.units.most_common(10)],
            'top_products_by_views': [{'product_id': p, 'views': n} for p, n in self.views.most_common(10)],
            'late_events': self.late, 'final': watermark - 5000 >= end,
            'uv_exact': True, 'uv_error': 0,
        }


class Shop:
    """A tiny shop: sessions that browse, buy, get shipped and sometimes refunded."""

    def __init__(self, hostile, rate):
        self.lock = threading.Lock()
        self.hostile = hostile
        self.rate = rate
        self.rng = random.Random(7)
        self.windows = {w: {} for w in SIZES}
        self.dirty = set()
        self.orders = {}            # order_id -> state
        self.history = collections.defaultdict(list)
        self.alerts = []
        self.recs = {}
        self.logs = collections.defaultdict(list)   # (topic, partition) -> [(ts, key, value)]
        self.subscribers = []
        self.next_order = 1
        self.watermark = 0
        self.products = ['p%05d' % i for i in range(1, 301)]
        if hostile:
            self.products[0] = XSS
            self.products[1] = 'p"><script>window.__xss=2</script>'

    # -- event generation --------------------------------------------------

    def product(self):
        # A skewed choice, so that top products are stable enough to read.
        return self.products[min(len(self.products) - 1, int(self.rng.expovariate(1 / 25.0)))]

    def win_add(self, ts, fn):
        for w, size in SIZES.items():
            start = ts - ts % size
            agg = self.windows[w].get(start)
            if agg is None:
                agg = self.windows[w][start] = Window(w, start)
                old = sorted(self.windows[w])[:-70]
                for s in old:
                    del self.windows[w][s]
            fn(agg)
            self.dirty.add((w, start))

    def log(self, topic, key, value):
        part = hash(key) % (6 if topic.startswith('shop.') else 1)
        self.logs[(topic, part)].append((value['ts'], key, json.dumps(value)))
        if len(self.logs[(topic, part)]) > 5000:
            del self.logs[(topic, part)][:1000]

    def session(self, ts):
        rng = self.rng
        user = 'u%06d' % rng.randint(1, 3000)
        sess = 's%d' % rng.randint(1, 10**9)
        self.watermark = max(self.watermark, ts)
        self.win_add(ts, lambda a: (a.users.add(user), setattr(a, 'pv', a.pv + 1)))
        self.log('shop.clicks', user, {'id': sess + '-0', 'type': 'page_view', 'ts': ts, 'user_id': user, 'session_id': sess})
        steps = 0
        basket = []
        for _ in range(rng.randint(1, 5)):
            p = self.product()
            self.win_add(ts, lambda a, p=p: (a.views.update([p]), a.funnel[0].add(sess), setattr(a, 'pv', a.pv + 1)))
            self.log('shop.clicks', user, {'id': sess + '-v', 'type': 'product_view', 'ts': ts, 'user_id': user,
                                           'session_id': sess, 'product_id': p, 'price': 999})
            if rng.random() < 0.35:
                basket.append((p, rng.randint(1, 3), rng.choice([499, 999, 1999, 2599, 4999, 12999])))
        if basket:
            self.win_add(ts, lambda a: a.funnel[1].add(sess))
            if rng.random() < 0.6:
                self.win_add(ts, lambda a: a.funnel[2].add(sess))
                if rng.random() < 0.75:
                    steps = 4
        if steps == 4:
            self.place_order(ts, user, sess, basket)

    def place_order(self, ts, user, sess, basket):
        oid = 'o%d' % self.next_order
        self.next_order += 1
        if self.hostile and self.next_order % 7 == 0:
            oid = 'o%d <b>&amp;</b>?#x' % self.next_order
        amount = sum(q * p for _, q, p in basket)
        ev = {'id': oid + '-c', 'type': 'order_created', 'ts': ts, 'order_id': oid, 'user_id': user,
              'items': [{'product_id': p, 'qty': q, 'price': pr} for p, q, pr in basket],
              'amount': amount, 'currency': 'GBP'}

        def add(a):
            a.gmv += amount
            a.orders += 1
            a.buyers.add(user)
            a.funnel[3].add(sess)
            for p, q, _ in basket:
                a.units[p] += q
        self.win_add(ts, add)
        st = {'order_id': oid, 'user_id': user, 'status': 'created', 'currency': 'GBP', 'amount': amount,
              'paid': 0, 'refunded': 0, 'created_ts': ts, 'paid_ts': None, 'shipped_ts': None,
              'delivered_ts': None, 'cancelled_ts': None, 'return_requested_ts': None, 'refunded_ts': None,
              'returns': [], 'refunds': [], 'sla_breached': False, 'external': False, 'events': 1, 'updated_ts': ts}
        self.orders[oid] = st
        self.history[oid].append(ev)
        self.log('shop.orders', oid, ev)
        self.publish('order', st)
        # Recommendations: products bought together are similar.
        for p, _, _ in basket:
            sim = self.recs.setdefault(p, collections.Counter())
            for q, _, _ in basket:
                if q != p:
                    sim[q] += 1
            if not sim:
                sim[self.product()] += 0.5

    def advance_orders(self, ts):
        rng = self.rng
        for oid, st in list(self.orders.items())[-200:]:
            step = None
            if st['status'] == 'created' and rng.random() < 0.3:
                if rng.random() < 0.05:
                    step = ('order_cancelled', 'cancelled', 'cancelled_ts', {'reason': 'customer request'})
                else:
                    step = ('order_paid', 'paid', 'paid_ts', {'amount': st['amount'], 'payment_method': 'card'})
            elif st['status'] == 'paid' and rng.random() < 0.1:
                step = ('order_shipped', 'shipped', 'shipped_ts', {'carrier': 'DHL'})
            elif st['status'] == 'shipped' and rng.random() < 0.1:
                step = ('order_delivered', 'delivered', 'delivered_ts', {})
            elif st['status'] == 'delivered' and rng.random() < 0.02:
                amt = st['amount'] // 2 if rng.random() < 0.5 else st['amount']
                step = ('refund_issued', 'refunded' if amt == st['amount'] else 'partially_refunded', 'refunded_ts',
                        {'amount': amt, 'return_id': 'r' + oid[1:], 'reason': 'damaged'})
            if not step:
                continue
            etype, status, tsf, extra = step
            ev = dict({'id': oid + '-' + etype, 'type': etype, 'ts': ts, 'order_id': oid, 'user_id': st['user_id']}, **extra)
            st['status'], st[tsf], st['updated_ts'] = status, ts, ts
            st['events'] += 1
            if etype == 'order_paid':
                st['paid'] = st['amount']
                self.win_add(ts, lambda a, v=st['amount']: setattr(a, 'paid', a.paid + v))
            if etype == 'refund_issued':
                st['refunded'] += extra['amount']
                st['refunds'].append({'id': ev['id'], 'amount': extra['amount'], 'ts': ts, 'return_id': extra['return_id']})
                self.win_add(ts, lambda a, v=extra['amount']: setattr(a, 'refunds', a.refunds + v))
                self.log('shop.aftersales', oid, ev)
                if rng.random() < 0.3:
                    self.alert({'id': 'ra-' + oid, 'type': 'refund_anomaly', 'ts': ts, 'user_id': st['user_id'],
                                'refund_total': st['refunded'], 'refunds': 3, 'threshold': 50000, 'window_ms': 86400000,
                                'last_order_id': oid,
                                'message': XSS if self.hostile else 'refunds of one user above the threshold in the window'})
            else:
                self.log('shop.orders', oid, ev)
            if etype == 'order_paid' and rng.random() < 0.05:
                st['sla_breached'] = True
                self.alert({'id': 'sla-' + oid, 'type': 'sla_breach', 'ts': ts, 'order_id': oid, 'user_id': st['user_id'],
                            'paid_ts': ts, 'deadline': ts + 60000, 'sla_ms': 60000,
                            'message': 'paid but not shipped within the SLA'})
            self.history[oid].append(ev)
            self.publish('order', st)

    def alert(self, a):
        a = dict(a, key=a.get('order_id') or a.get('user_id'))
        self.alerts.insert(0, a)
        del self.alerts[1000:]
        self.log('shop.alerts', a['key'], a)
        self.publish('alert', a)

    def backfill(self, minutes):
        """History for the charts: the last `minutes` minutes at a lower rate."""
        t0 = now_ms() - minutes * 60_000
        for i in range(minutes * 60):
            ts = t0 + i * 1000 + self.rng.randint(0, 999)
            for _ in range(self.rng.randint(0, 2)):
                self.session(ts)
            if i % 10 == 0:
                self.advance_orders(ts)
        self.dirty.clear()

    def tick(self):
        with self.lock:
            ts = now_ms()
            n = sum(1 for _ in range(self.rate) if self.rng.random() < 0.25)
            for _ in range(n):
                self.session(ts - self.rng.randint(0, 200))
            self.advance_orders(ts)
            for w, start in sorted(self.dirty):
                agg = self.windows[w].get(start)
                if agg:
                    self.publish('kpi', agg.value(self.watermark))
            self.dirty.clear()

    def run(self):
        while True:
            time.sleep(0.25)
            self.tick()

    # -- SSE -------------------------------------------------------------

    def publish(self, event, data):
        line = 'event: %s\ndata: %s\n\n' % (event, json.dumps(data))
        for q in list(self.subscribers):
            try:
                q.put_nowait(line)
            except queue.Full:
                pass

    # -- queries -----------------------------------------------------------

    def kpis(self, win, frm, to, limit):
        vals = [self.windows[win][s].value(self.watermark) for s in sorted(self.windows[win])]
        if frm is not None or to is not None:
            vals = [k for k in vals if (frm is None or k['start'] >= frm) and (to is None or k['start'] < to)]
        return vals[-limit:]


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    shop = None
    assets = ASSETS

    def log_message(self, fmt, *args):
        pass

    def send(self, code, body, ctype='application/json'):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(data)))
        self.send_header('Cache-Control', 'no-store')
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(data)

    def err(self, code, msg):
        self.send(code, {'error': msg, 'status': code})

    def do_POST(self):
        self.err(405, 'Only GET and HEAD are allowed.')

    do_PUT = do_DELETE = do_POST

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        q = {k: v[-1] for k, v in urllib.parse.parse_qs(u.query).items()}
        parts = [urllib.parse.unquote(p) for p in u.path.split('/')[1:]]
        try:
            self.route(u.path, parts, q)
        except ValueError as e:
            self.err(400, str(e))
        except (BrokenPipeError, ConnectionResetError):
            pass

    def int_arg(self, q, name, default=None, lo=0, hi=None):
        if name not in q:
            return default
        v = q[name]
        if not v.lstrip('-').isdigit():
            raise ValueError('%s must be a decimal integer.' % name)
        v = int(v)
        if v < lo:
            raise ValueError('%s is too small.' % name)
        return min(v, hi) if hi else v

    def route(self, path, parts, q):
        shop = self.shop
        if path in ('/', '/index.html', '/app.js', '/style.css'):
            name = 'index.html' if path == '/' else path[1:]
            with open(os.path.join(self.assets, name), 'rb') as f:
                return self.send(200, f.read(), CTYPES[os.path.splitext(name)[1]])
        if parts[0] != 'api':
            return self.err(404, 'No such path.')
        if path == '/api/stream':
            return self.stream()
        with shop.lock:
            return self.api(parts[1:], q)

    def api(self, p, q):
        shop = self.shop
        head = p[0] if p else ''
        if head == 'kpis':
            win = q.get('window', '1m')
            if win not in SIZES:
                raise ValueError('window must be 1m, 1h or 1d.')
            if len(p) == 2 and p[1] == 'latest':
                vals = shop.kpis(win, None, None, 10**9)
                cur = vals[-1] if vals else None
                prev = next((k for k in vals if cur and k['start'] == cur['start'] - SIZES[win]), None)
                return self.send(200, {'window': win, 'current': cur, 'previous': prev})
            limit = self.int_arg(q, 'limit', 60, 1, 10000)
            return self.send(200, {'window': win, 'kpis': shop.kpis(win, self.int_arg(q, 'from'), self.int_arg(q, 'to'), limit)})
        if head == 'orders':
            if len(p) == 1:
                limit = self.int_arg(q, 'limit', 20, 1, 1000)
                orders = sorted(shop.orders.values(), key=lambda s: s['updated_ts'], reverse=True)[:limit]
                return self.send(200, {'orders': orders})
            oid = '/'.join(p[1:])
            if oid not in shop.orders:
                return self.err(404, 'No such order.')
            return self.send(200, {'order_id': oid, 'state': shop.orders[oid], 'history': shop.history[oid]})
        if head == 'recs':
            if len(p) == 1:
                kind = q.get('kind', 'product')
                limit = self.int_arg(q, 'limit', 100, 1, 1000)
                keys = sorted(shop.recs) if kind == 'product' else sorted({s['user_id'] for s in shop.orders.values()})
                return self.send(200, {'keys': keys[:limit]})
            if p[1] == 'popular':
                pop = collections.Counter()
                for w in shop.windows['1h'].values():
                    pop.update(w.units)
                return self.send(200, {'key': 'popular', 'value': {'popular': [
                    {'product_id': k, 'score': float(v)} for k, v in pop.most_common(10)], 'ts': now_ms()}})
            ident = '/'.join(p[2:])
            if p[1] == 'product' and ident in shop.recs:
                sim = shop.recs[ident]
                tot = sum(sim.values()) or 1
                return self.send(200, {'key': 'product:' + ident, 'value': {'product_id': ident, 'similar': [
                    {'product_id': k, 'score': round(v / tot, 4)} for k, v in sim.most_common(20)], 'ts': now_ms()}})
            if p[1] == 'user' and any(s['user_id'] == ident for s in shop.orders.values()):
                return self.send(200, {'key': 'user:' + ident, 'value': {'user_id': ident, 'recommended': [
                    {'product_id': x, 'score': round(1 / (i + 1), 4)} for i, x in enumerate(shop.products[2:12])], 'ts': now_ms()}})
            return self.err(404, 'No recommendations.')
        if head == 'alerts':
            return self.send(200, {'alerts': shop.alerts[:self.int_arg(q, 'limit', 50, 1, 1000)]})
        if head == 'summary':
            return self.send(200, {'orders': len(shop.orders), 'kpi_windows': sum(len(v) for v in shop.windows.values()),
                                   'recs': len(shop.recs), 'alerts': len(shop.alerts), 'records': 0, 'caught_up': True})
        if head == 'cluster':
            return self.send(200, {'cluster_id': 'fake-cluster', 'controller_id': 1,
                                   'brokers': [{'id': 1, 'host': '127.0.0.1', 'port': 9092}]})
        if head == 'topics':
            return self.topics(p[1:], q)
        if head == 'groups':
            return self.groups(p[1:])
        return self.err(404, 'No such path.')

    def topic_names(self):
        names = {t for t, _ in self.shop.logs} | {'shop.kpis', 'shop.recs', 'shop.order-state', 'shop.deadletter', '__consumer_offsets'}
        if self.shop.hostile:
            names.add('evil' + XSS)
        return sorted(names)

    def topics(self, p, q):
        shop = self.shop

        def parts(name):
            return 50 if name.startswith('__') else 6 if name.startswith('shop.') else 1

        def pinfo(name, i):
            log = shop.logs.get((name, i), [])
            return {'partition': i, 'leader': 1, 'replicas': [1], 'isr': [1], 'low': 0, 'high': len(log),
                    'size_bytes': sum(len(v) + 70 for _, _, v in log)}
        if not p:
            out = []
            for name in self.topic_names():
                ps = [pinfo(name, i) for i in range(parts(name))]
                out.append({'name': name, 'partitions': len(ps), 'replication_factor': 1, 'internal': name.startswith('__'),
                            'messages': sum(x['high'] - x['low'] for x in ps), 'size_bytes': sum(x['size_bytes'] for x in ps)})
            return self.send(200, {'topics': out})
        name = p[0]
        if name not in self.topic_names():
            return self.err(404, 'No such topic.')
        if len(p) == 1:
            return self.send(200, {'name': name, 'internal': name.startswith('__'),
                                   'partitions': [pinfo(name, i) for i in range(parts(name))],
                                   'configs': [{'name': 'cleanup.policy', 'value': 'compact' if name in ('shop.recs', 'shop.order-state') else 'delete', 'default': name not in ('shop.recs', 'shop.order-state'), 'sensitive': False},
                                               {'name': 'retention.ms', 'value': '604800000', 'default': True, 'sensitive': False},
                                               {'name': 'segment.bytes', 'value': '1073741824', 'default': True, 'sensitive': False},
                                               {'name': 'sasl.secret', 'value': None, 'default': False, 'sensitive': True}]})
        if p[1] == 'messages':
            if 'partition' not in q:
                raise ValueError('partition is required.')
            part = self.int_arg(q, 'partition')
            log = shop.logs.get((name, part), [])
            limit = self.int_arg(q, 'limit', 50, 1, 500)
            high = len(log)
            if 'offset' in q:
                start = self.int_arg(q, 'offset')
            elif 'time' in q:
                t = self.int_arg(q, 'time')
                start = next((i for i, (ts, _, _) in enumerate(log) if ts >= t), high)
            else:
                start = max(0, high - limit)
            text = q.get('q')
            msgs, i, scanned = [], start, 0
            while i < high and len(msgs) < limit and scanned < 10000:
                ts, k, v = log[i]
                scanned += 1
                if not text or text in v or text in k:
                    msgs.append({'partition': part, 'offset': i, 'timestamp': ts, 'key': k, 'value': v,
                                 'headers': [{'key': 'h', 'value': XSS}] if shop.hostile else []})
                i += 1
            return self.send(200, {'topic': name, 'partition': part, 'messages': msgs, 'next_offset': i, 'scanned': scanned, 'high': high})
        return self.err(404, 'No such path.')

    def groups(self, p):
        gids = ['shopstream-analytics', 'shopstream-orders', 'shopstream-recommend', 'shopstream-serve']
        if self.shop.hostile:
            gids.append('g' + XSS)
        if not p:
            return self.send(200, {'groups': [{'group_id': g, 'state': 'Stable', 'protocol_type': 'consumer', 'members': 2,
                                               'lag': random.randint(0, 50)} for g in gids]})
        gid = p[0]
        if gid not in gids:
            return self.err(404, 'No such group.')
        offs = []
        for i in range(6):
            high = len(self.shop.logs.get(('shop.orders', i), []))
            lag = random.randint(0, 20)
            offs.append({'topic': 'shop.orders', 'partition': i, 'committed': max(0, high - lag), 'high': high, 'lag': min(lag, high)})
        return self.send(200, {'group_id': gid, 'state': 'Stable', 'protocol_type': 'consumer', 'protocol': 'cooperative-sticky',
                               'coordinator': 1, 'members': [
                                   {'member_id': 'rdkafka-%d-aaaa' % m, 'client_id': 'rdkafka', 'host': '/127.0.0.1',
                                    'assignments': [{'topic': 'shop.orders', 'partition': i} for i in range(m, 6, 2)]} for m in range(2)],
                               'offsets': offs, 'lag': sum(o['lag'] for o in offs)})

    def stream(self):
        self.send_response(200)
        self.send_header('Content-Type', 'text/event-stream')
        self.send_header('Cache-Control', 'no-store')
        self.send_header('Connection', 'close')
        self.end_headers()
        q = queue.Queue(maxsize=1000)
        self.shop.subscribers.append(q)
        try:
            self.wfile.write(b': hello\n\n')
            self.wfile.flush()
            while True:
                try:
                    line = q.get(timeout=15)
                except queue.Empty:
                    line = ': ping\n\n'
                self.wfile.write(line.encode())
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
        finally:
            self.shop.subscribers.remove(q)
            self.close_connection = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--host', default='127.0.0.1')
    ap.add_argument('--port', type=int, default=8099)
    ap.add_argument('--assets', default=ASSETS)
    ap.add_argument('--rate', type=int, default=8, help='sessions per tick (x 0.25), ticks are 250 ms')
    ap.add_argument('--hostile', action='store_true', help='put markup into ids, messages and names')
    a = ap.parse_args()
    shop = Shop(a.hostile, a.rate)
    shop.backfill(65)
    Handler.shop = shop
    Handler.assets = a.assets
    threading.Thread(target=shop.run, daemon=True).start()
    srv = ThreadingHTTPServer((a.host, a.port), Handler)
    srv.daemon_threads = True
    print('fake shopstream API on http://%s:%d/' % (a.host, srv.server_address[1]), flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == '__main__':
    main()
