"""Issue 8: `shopstream serve` answers from the result topics exactly.

A broker, `process all` and a simulated quarter hour of shop traffic (in
the past, so every window closes with --finish-idle-ms); then serve.  The
API's KPIs must equal the final shop.kpis records, window by window; order
states and histories, recommendations and alerts must equal the topics;
/metrics must pass the Prometheus text-format check (promcheck.py); bad
requests get a 4xx JSON error and serve keeps serving."""
import json
import os
import socket
import sys
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "shop"))
import promcheck  # noqa: E402
from shoplib import (Broker, free_port, latest_by_key, read_topic, run, start, stop,  # noqa: E402
                     wait_caught_up, workdir)

WINDOW_MS = {"1m": 60000, "1h": 3600000, "1d": 86400000}
passed = 0
failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok   %s" % name)
    else:
        failed += 1
        print("FAIL %s %s" % (name, detail))


def get(base, path, expect=200):
    """GET base+path; returns (status, parsed JSON or text)."""
    try:
        with urllib.request.urlopen(base + path, timeout=30) as r:
            body = r.read()
            status = r.status
            ctype = r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        body = e.read()
        status = e.code
        ctype = e.headers.get("Content-Type", "")
    if ctype.startswith("application/json"):
        return status, json.loads(body)
    return status, body.decode("utf-8", "replace")


def raw_request(port, data, read=True):
    """Sends raw bytes to the HTTP port; returns the status line (or '')."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(data)
        if not read:
            return ""
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
        return buf.split(b"\r\n", 1)[0].decode("latin-1")
    except OSError:
        return ""
    finally:
        s.close()


def wait_serve(base, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            st, s = get(base, "/api/summary")
            if st == 200 and s["caught_up"]:
                return s
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError("serve did not catch up within %d s" % timeout)


def main():
    work = workdir("api")
    b = Broker(work, name="api", extra=["--set", "group.initial.rebalance.delay.ms=0"])
    b.start()
    procs = []
    serve = None
    try:
        now = int(time.time() * 1000)
        start_ms = now - 20 * 60 * 1000
        run(["simulate", "--bootstrap", b.bootstrap, "--seed", "8", "--start", str(start_ms),
             "--duration", "900", "--rate", "30", "--time-scale", "300", "--as-fast-as-possible",
             "--partitions", "3"], timeout=120)
        procs.append(start(["process", "all", "--bootstrap", b.bootstrap, "--finish-idle-ms", "2000",
                            "--commit-interval-ms", "300", "--partitions", "3"],
                           os.path.join(work, "process.log")))
        for g, topics in (("shopstream-orders", ["shop.orders", "shop.aftersales"]),
                          ("shopstream-analytics", ["shop.clicks", "shop.orders", "shop.aftersales"]),
                          ("shopstream-recommend", ["shop.clicks", "shop.orders"])):
            wait_caught_up(b.bootstrap, g, topics, timeout=180, procs=procs)
        # the analytics' idle finish closes every window a little later
        time.sleep(4)
        hport = free_port()
        serve = start(["serve", "--bootstrap", b.bootstrap, "--http", "127.0.0.1:%d" % hport],
                      os.path.join(work, "serve.log"))
        base = "http://127.0.0.1:%d" % hport
        summary = wait_serve(base)
        check("serve caught up", summary["kpi_windows"] > 0, summary)

        # --- KPIs: every final window equals the topic's last record for it
        kpis = {}
        for (_p, _o, k, v, _t) in read_topic(b.bootstrap, "shop.kpis"):
            kpis[k.decode()] = json.loads(v)
        finals = {k: v for k, v in kpis.items() if v["final"]}
        check("there are final windows of every size",
              all(any(k.startswith(w + "@") for k in finals) for w in WINDOW_MS), sorted(finals)[:5])
        bad = []
        for key, want in sorted(finals.items()):
            w, s = key.split("@")
            st, got = get(base, "/api/kpis?window=%s&from=%s&to=%d" % (w, s, int(s) + 1))
            if st != 200 or got["kpis"] != [want]:
                bad.append(key)
        check("API KPIs equal the final shop.kpis records (%d windows)" % len(finals), not bad, bad[:3])
        for w in WINDOW_MS:
            mine = sorted((v for k, v in kpis.items() if k.startswith(w + "@")), key=lambda d: d["start"])
            st, got = get(base, "/api/kpis?window=%s&limit=10000" % w)
            check("GET /api/kpis?window=%s lists every window in order" % w,
                  st == 200 and got["kpis"] == mine, (len(got.get("kpis", [])), len(mine)))
            st, lat = get(base, "/api/kpis/latest?window=%s" % w)
            prev = [d for d in mine if mine and d["start"] == mine[-1]["start"] - WINDOW_MS[w]]
            check("GET /api/kpis/latest?window=%s" % w,
                  st == 200 and lat["current"] == mine[-1] and lat["previous"] == (prev[0] if prev else None))
        st, got = get(base, "/api/kpis?window=1m&limit=3")
        check("limit keeps the newest windows", [d["start"] for d in got["kpis"]] ==
              sorted(d["start"] for k, d in kpis.items() if k.startswith("1m@"))[-3:])

        # --- orders: state and history
        states = {k.decode(): json.loads(v) for k, v in
                  latest_by_key(read_topic(b.bootstrap, "shop.order-state")).items()}
        events = {}
        for t in ("shop.orders", "shop.aftersales"):
            for (_p, _o, k, v, _t) in read_topic(b.bootstrap, t):
                e = json.loads(v)
                events.setdefault(k.decode(), {})[e["id"]] = e
        ids = sorted(states)[:: max(1, len(states) // 40)]
        bad = []
        for oid in ids:
            st, got = get(base, "/api/orders/" + urllib.request.quote(oid))
            hist = sorted(events.get(oid, {}).values(), key=lambda e: e["ts"])
            if st != 200 or got["state"] != states[oid] or \
                    sorted(e["id"] for e in got["history"]) != sorted(e["id"] for e in hist) or \
                    [e["ts"] for e in got["history"]] != sorted(e["ts"] for e in got["history"]):
                bad.append(oid)
        check("order state and history equal the topics (%d orders)" % len(ids), ids and not bad, bad[:3])
        st, got = get(base, "/api/orders?limit=5")
        check("recent orders", st == 200 and len(got["orders"]) == 5 and
              all(states.get(o["order_id"]) == o for o in got["orders"]))
        st, got = get(base, "/api/orders/no-such-order")
        check("unknown order is 404 JSON", st == 404 and got["status"] == 404 and got["error"])

        # --- recommendations
        recs = {k.decode(): json.loads(v) for k, v in
                latest_by_key(read_topic(b.bootstrap, "shop.recs")).items()}
        prods = [k for k in recs if k.startswith("product:")]
        users = [k for k in recs if k.startswith("user:")]
        bad = []
        for k in prods[:20] + users[:20]:
            kind, id_ = k.split(":", 1)
            st, got = get(base, "/api/recs/%s/%s" % (kind, urllib.request.quote(id_)))
            if st != 200 or got != {"key": k, "value": recs[k]}:
                bad.append(k)
        check("recommendations equal shop.recs (%d keys)" % (len(prods[:20]) + len(users[:20])),
              prods and users and not bad, bad[:3])
        st, got = get(base, "/api/recs/popular")
        check("popular", st == 200 and got["value"] == recs.get("popular"))
        st, got = get(base, "/api/recs?kind=product&limit=1000")
        check("product keys", st == 200 and sorted(got["keys"]) == sorted(k[8:] for k in prods)[:1000])

        # --- alerts
        alerts = [(k.decode() if k else None, json.loads(v))
                  for (_p, _o, k, v, _t) in read_topic(b.bootstrap, "shop.alerts")]
        st, got = get(base, "/api/alerts?limit=1000")
        want_ids = sorted(a["id"] for _k, a in alerts)[-1000:] if len(alerts) <= 1000 else None
        check("alerts equal shop.alerts (%d)" % len(alerts),
              st == 200 and (want_ids is None or sorted(a["id"] for a in got["alerts"]) == want_ids) and
              all("key" in a for a in got["alerts"]))

        # --- metrics
        st, text = get(base, "/metrics")
        try:
            samples = promcheck.check(text)
            ok = True
        except ValueError as e:
            ok, samples = False, str(e)
        check("/metrics passes the Prometheus text-format check", st == 200 and ok, samples)
        names = {s[0] for s in samples} if ok else set()
        lag = [s for s in samples if s[0] == "shopstream_consumer_group_lag"] if ok else []
        check("/metrics has consumer group lag per partition",
              any(s[1].get("group") == "shopstream-orders" and "partition" in s[1] for s in lag), sorted(names)[:20])

        # --- bad requests: 4xx JSON, never a crash
        for path, code in (("/api/kpis?window=2m", 400), ("/api/kpis?limit=abc", 400),
                           ("/api/kpis?limit=0", 400), ("/api/kpis?from=-5", 400),
                           ("/api/alerts?limit=99999999999999999999", 400), ("/api/nope", 404),
                           ("/nope.html", 404), ("/api/recs?kind=x", 400),
                           ("/api/orders/" + "x" * 300, 400), ("/api/topics/no.such.topic", 404),
                           ("/api/topics/shop.orders/messages", 400),
                           ("/api/topics/shop.orders/messages?partition=x", 400),
                           ("/api/groups/no-such-group", 404)):
            st, got = get(base, path)
            check("GET %s -> %d JSON" % (path[:60], code),
                  st == code and isinstance(got, dict) and got.get("status") == code, (st, got))
        req = urllib.request.Request(base + "/api/kpis", data=b"x", method="POST")
        try:
            urllib.request.urlopen(req, timeout=10)
            st = 200
        except urllib.error.HTTPError as e:
            st = e.code
        check("POST -> 405", st == 405)
        for junk in (b"GARBAGE\r\n\r\n", b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\n\r\n",
                     b"GET /api/kpis HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 5000 + b"\r\n",
                     b"\x00\xff\xfe" * 1000, b"GET /api/kpis?window=%00%ff HTTP/1.1\r\nHost: x\r\n\r\n"):
            raw_request(hport, junk)
        # half-open connections do not stop others
        socks = [socket.create_connection(("127.0.0.1", hport)) for _ in range(20)]
        st, got = get(base, "/api/summary")
        for s in socks:
            s.close()
        check("still serving after hostile requests", st == 200 and serve.poll() is None)

        # --- parallel clients
        errs = []

        def hammer():
            for _ in range(20):
                st, _g = get(base, "/api/kpis?window=1m&limit=100")
                if st != 200:
                    errs.append(st)
        ts = [threading.Thread(target=hammer) for _ in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        check("160 parallel requests all answered", not errs, errs[:3])

        # --- live updates: the stream starts with the newest windows
        s = socket.create_connection(("127.0.0.1", hport), timeout=10)
        s.sendall(b"GET /api/stream HTTP/1.1\r\nHost: x\r\n\r\n")
        buf = b""
        deadline = time.time() + 10
        while b"event: kpi" not in buf and time.time() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        s.close()
        check("SSE sends kpi events", b"text/event-stream" in buf and b"event: kpi\ndata: {" in buf, buf[:300])

        rc = stop(serve)
        serve = None
        check("serve stops cleanly on SIGTERM", rc == 0, rc)
    finally:
        if serve:
            stop(serve)
        for p in procs:
            stop(p)
        b.stop()
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
