"""`shopstream replay` end to end: generated Online Retail, Olist and
YOOCHOOSE files go through the real binary (--stdout, plain and .zst input,
stdin) and into a real broker, and what comes out is checked against a
direct computation in Python (decimal arithmetic, no floats) of per-day
orders, GMV, paid revenue and refunds; then --limit, a file that is not the
dataset, and --speed pacing (a 2 s event-time span at --speed 1 takes ~2 s).

Run through tests/shop/run.sh (or directly with /usr/bin/python3)."""
import collections
import datetime
import json
import os
import random
import shutil
import subprocess
import sys
import time
from decimal import Decimal, ROUND_HALF_UP

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoplib import BIN, Broker, read_topic, run, workdir  # noqa: E402

UTC = datetime.timezone.utc
HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"


def cents(text, scale=2):
    """round(text x 10^scale), half away from zero, exactly."""
    q = Decimal(text).scaleb(scale).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return int(q)


def csv_field(s):
    if any(c in s for c in ',"\n'):
        return '"' + s.replace('"', '""') + '"'
    return s


def day_of(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, UTC).date().isoformat()


# ---------------------------------------------------------------- Online Retail

def gen_retail(path, seed=7):
    """A few hundred rows over several days: C invoices, zero and negative
    prices, guests, quoted descriptions with commas and quotes, both date
    formats, float and integer CustomerIDs, invoices split over the file,
    and two bad rows.  Returns the number of bad rows written."""
    rnd = random.Random(seed)
    descs = ["WHITE HANGING HEART T-LIGHT HOLDER", "LAMP, RED", 'MUG "BIG", BLUE',
             'RECORD FRAME 7" SINGLE', "SET OF 3 CAKE TINS, PANTRY DESIGN", "POSTAGE"]
    prices = ["2.55", "0.665", "1.005", "3.39", "0", "12.75", "0.42", "2.675", "165.00", "1.25"]
    rows, late = [], []
    base = datetime.datetime(2010, 12, 1, 8, 26, tzinfo=UTC)
    n = 0
    for day in range(6):
        for k in range(14):
            n += 1
            t = base + datetime.timedelta(days=day, minutes=37 * k, seconds=0)
            kind = rnd.random()
            no = ("C%d" if kind < 0.18 else "%d") % (536000 + n)
            cust = "" if rnd.random() < 0.25 else str(12000 + rnd.randrange(50))
            if cust and rnd.random() < 0.7:
                cust += ".0"
            if rnd.random() < 0.5:
                date = t.strftime("%Y-%m-%d %H:%M:%S")
            else:
                date = "%d/%d/%d %d:%02d" % (t.month, t.day, t.year, t.hour, t.minute)
            for r in range(rnd.randrange(1, 8)):
                qty = rnd.choice([1, 2, 3, 6, 12, 24, -1, 0]) if not no.startswith("C") \
                    else -rnd.choice([1, 2, 5])
                price = rnd.choice(prices)
                if not no.startswith("C") and rnd.random() < 0.05:
                    price = "-11062.06"
                row = [no, "%05d%s" % (rnd.randrange(20000, 23000), rnd.choice(["", "A", "B"])),
                       rnd.choice(descs), str(qty), date, price, cust, "United Kingdom"]
                line = ",".join(csv_field(f) for f in row) + "\n"
                # some rows of some invoices come much later in the file
                (late if rnd.random() < 0.08 else rows).append(line)
        # an invoice of only non-items: skipped
    rows.append("599999,ZZZ,nothing,0,2010-12-03 10:00:00,1.00,,UK\n")
    rows.append("599998,ZZZ,adjust,-3,2010-12-03 10:00:00,1.00,,UK\n")
    bad = ["599997,X,bad price,1,2010-12-03 10:00:00,abc,,UK\n",
           "599996,X,bad date,1,2010-12-33 10:00:00,1.00,,UK\n"]
    with open(path, "w", newline="") as f:
        f.write(HEADER)
        f.writelines(rows[:len(rows) // 2] + bad + rows[len(rows) // 2:] + late)
    return len(bad)


def parse_date(s):
    for fmt in ("%Y-%m-%d %H:%M:%S", "%m/%d/%Y %H:%M"):
        try:
            return datetime.datetime.strptime(s, fmt).replace(tzinfo=UTC)
        except ValueError:
            pass
    raise ValueError(s)


def expected_retail(path):
    """Per-day [orders, GMV, paid revenue, refunds count, refunds amount] by
    DESIGN.md's "Online Retail replay", computed directly with decimals."""
    import csv
    inv = collections.OrderedDict()
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            try:
                d = parse_date(r["InvoiceDate"])
                Decimal(r["UnitPrice"])
                int(r["Quantity"])
            except Exception:
                continue  # a bad row: replay skips it too
            inv.setdefault(r["InvoiceNo"], {"date": d, "rows": []})["rows"].append(r)
    out = collections.defaultdict(lambda: [0, 0, 0, 0, 0])
    skipped = 0
    for no, v in inv.items():
        day = v["date"].date().isoformat()
        if no.startswith("C"):
            out[day][3] += 1
            out[day][4] += sum(abs(int(r["Quantity"])) * cents(r["UnitPrice"]) for r in v["rows"])
            continue
        items = [(int(r["Quantity"]), cents(r["UnitPrice"])) for r in v["rows"]
                 if int(r["Quantity"]) > 0 and Decimal(r["UnitPrice"]) > 0]
        if not items:
            skipped += 1
            continue
        amount = sum(q * p for q, p in items)
        out[day][0] += 1
        out[day][1] += amount
        out[day][2] += amount
    return dict(out), skipped


def per_day(events):
    out = collections.defaultdict(lambda: [0, 0, 0, 0, 0])
    for e in events:
        d = out[day_of(e["ts"])]
        if e["type"] == "order_created":
            d[0] += 1
            d[1] += e["amount"]
        elif e["type"] == "order_paid":
            d[2] += e["amount"]
        elif e["type"] == "refund_issued":
            d[3] += 1
            d[4] += e["amount"]
    return dict(out)


def parse_stdout(text):
    """(topic, key, event) per line of a --stdout replay."""
    out = []
    for line in text.splitlines():
        topic, key, js = line.split("\t", 2)
        out.append((topic, key, json.loads(js)))
    return out


def check_stream(recs):
    """Properties every replay output has: ts order, unique ids, the topic
    and key of each type."""
    ids = set()
    last = -1
    for topic, key, e in recs:
        assert e["ts"] >= last, "events out of ts order at %s" % e["id"]
        last = e["ts"]
        assert e["id"] not in ids, "duplicate id %s" % e["id"]
        ids.add(e["id"])
        if e["type"].startswith("order_"):
            assert topic == "shop.orders" and key == e["order_id"], (topic, key, e)
        elif e["type"] in ("refund_issued",):
            assert topic == "shop.aftersales" and key == e["order_id"], (topic, key, e)
        else:
            assert topic == "shop.clicks" and key == e["user_id"], (topic, key, e)


def test_retail(work):
    path = os.path.join(work, "retail.csv")
    nbad = gen_retail(path)
    want, skipped = expected_retail(path)
    assert len(want) >= 5 and any(v[3] for v in want.values()), want
    # the generated file has what the test claims to cover
    with open(path) as f:
        text = f.read()
    lines = text.splitlines()[1:]
    invs = [ln.split(",", 1)[0] for ln in lines]
    runs = [k for i, k in enumerate(invs) if i == 0 or invs[i - 1] != k]
    assert len(lines) >= 200, len(lines)
    assert len(runs) > len(set(runs)), "no invoice is split over the file"
    assert ",,United Kingdom" in text and '"MUG ""BIG"", BLUE"' in text
    assert "/2010 " in text and "2010-12-" in text and ".0,United" in text

    p = run(["replay", "online-retail", path, "--stdout"])
    recs = parse_stdout(p.stdout)
    check_stream(recs)
    got = per_day([e for _t, _k, e in recs])
    assert got == want, "per-day mismatch:\n got  %s\n want %s" % (got, want)
    events = [e for _t, _k, e in recs]
    for e in events:
        if e["type"] == "order_created":
            assert e["currency"] == "GBP"
            assert e["amount"] == sum(i["qty"] * i["price"] for i in e["items"])
            assert all(i["qty"] > 0 and i["price"] > 0 for i in e["items"])
        if e["user_id"].startswith("guest-"):
            assert e["user_id"] == "guest-" + e["order_id"]
        else:
            assert "." not in e["user_id"], e["user_id"]
    # the summary: rows, skipped rows and why, events per type
    summary = p.stderr.strip().splitlines()[-1]
    ncreated = sum(v[0] for v in want.values())
    nrefunds = sum(v[3] for v in want.values())
    assert "%d skipped (bad number 1, bad date 1)" % nbad in summary, summary
    assert "%d invoices made no event" % skipped in summary, summary
    assert "order_created %d, order_paid %d, refund_issued %d" % (
        ncreated, ncreated, nrefunds) in summary, summary
    assert "line" in p.stderr and "UnitPrice 'abc' is not a number" in p.stderr, p.stderr
    print("retail --stdout: %d events over %d days match the decimal computation" % (
        len(recs), len(want)))

    # the same file compressed with zstd, and through stdin
    import zstandard  # python3-zstandard (make deps); the zstd CLI may be missing
    with open(path, "rb") as src, open(path + ".zst", "wb") as dst:
        dst.write(zstandard.ZstdCompressor(level=19).compress(src.read()))
    pz = run(["replay", "online-retail", path + ".zst", "--stdout"])
    assert pz.stdout == p.stdout, "zstd input made different events"
    with open(path + ".zst", "rb") as f:
        ps = run(["replay", "online-retail", "-", "--stdout"], stdin=f)
    assert ps.stdout == p.stdout, "stdin input made different events"
    print("retail .zst and stdin: identical output")

    # --limit
    pl = run(["replay", "online-retail", path, "--stdout", "--limit", "5"])
    assert pl.stdout.splitlines() == p.stdout.splitlines()[:5]

    # not the dataset: one sentence, exit 1
    other = os.path.join(work, "other.csv")
    with open(other, "w") as f:
        f.write("order_id,customer_id\nx,y\n")
    pe = run(["replay", "online-retail", other, "--stdout"], check=False)
    assert pe.returncode == 1 and pe.stdout == "", pe
    assert pe.stderr.strip() == ("shopstream replay: %s is not the Online Retail dataset: its "
                                 "header has no InvoiceNo column." % other), pe.stderr
    return path, want, len(recs)


def test_retail_broker(work, path, want, nevents):
    b = Broker(work)
    b.start()
    try:
        p = run(["replay", "online-retail", path, "--bootstrap", b.bootstrap,
                 "--partitions", "3"], timeout=120)
        assert "events" in p.stderr
        recs = []
        for topic in ("shop.orders", "shop.aftersales"):
            for (_part, _off, key, value, ts) in read_topic(b.bootstrap, topic):
                e = json.loads(value)
                assert key.decode() == e["order_id"], (key, e)
                assert ts == e["ts"], (ts, e["ts"])
                recs.append(e)
        assert len(recs) == nevents, (len(recs), nevents)
        got = per_day(recs)
        assert got == want, "broker per-day mismatch:\n got  %s\n want %s" % (got, want)
        from confluent_kafka.admin import AdminClient
        md = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10)
        assert len(md.topics["shop.orders"].partitions) == 3
        print("retail via broker: %d records, per-day totals match" % len(recs))
    finally:
        b.stop()


# ---------------------------------------------------------------- Olist

OLIST_ORDERS_HEADER = ("order_id,customer_id,order_status,order_purchase_timestamp,"
                       "order_approved_at,order_delivered_carrier_date,"
                       "order_delivered_customer_date,order_estimated_delivery_date")


def gen_olist(work, seed=3):
    rnd = random.Random(seed)
    orders, pays, items = [], [], []
    t0 = datetime.datetime(2017, 10, 2, 10, 0, 0)
    for i in range(60):
        oid = "%032x" % rnd.getrandbits(128)
        cid = "%032x" % rnd.getrandbits(128)
        status = rnd.choice(["delivered"] * 6 + ["canceled", "shipped", "unavailable"])
        t = t0 + datetime.timedelta(hours=7 * i, seconds=rnd.randrange(3600))
        steps = [t, t + datetime.timedelta(minutes=20), t + datetime.timedelta(days=2),
                 t + datetime.timedelta(days=8)]
        if status == "canceled":
            steps[2] = steps[3] = None
        elif status == "shipped":
            steps[3] = None
        elif status == "unavailable":
            steps[1:] = [None, None, None]
        us = rnd.random() < 0.5

        def fmt(x):
            if x is None:
                return ""
            if us:  # the Excel form of the first-5k file: no seconds
                return "%d/%d/%d %d:%02d" % (x.month, x.day, x.year, x.hour, x.minute)
            return x.strftime("%Y-%m-%d %H:%M:%S")
        orders.append((oid, cid, status, [fmt(x) for x in steps]))
        npay = rnd.choice([1, 1, 1, 2])
        for s in range(npay):
            pays.append((oid, s + 1, rnd.choice(["credit_card", "boleto", "voucher"]),
                         "%d.%02d" % (rnd.randrange(5, 500), rnd.randrange(100))))
        if status != "unavailable":
            for k in range(rnd.randrange(1, 4)):
                items.append((oid, k + 1, "p%d" % rnd.randrange(30),
                              "%d.%d" % (rnd.randrange(5, 300), rnd.randrange(10)),
                              "%d.%02d" % (rnd.randrange(0, 40), rnd.randrange(100))))
    fo = os.path.join(work, "olist_orders.csv")
    with open(fo, "w", newline="") as f:
        f.write(OLIST_ORDERS_HEADER + "\r\n")
        for oid, cid, status, ts in orders:
            f.write(",".join([oid, cid, status] + ts + [""]) + "\r\n")
    fp = os.path.join(work, "olist_payments.csv")
    with open(fp, "w") as f:
        f.write("order_id,payment_sequential,payment_type,payment_installments,payment_value\n")
        for oid, seq, typ, val in reversed(pays):  # sequential 2 before 1
            f.write("%s,%d,%s,1,%s\n" % (oid, seq, typ, val))
    fi = os.path.join(work, "olist_items.csv")
    with open(fi, "w") as f:
        f.write("order_id,order_item_id,product_id,seller_id,shipping_limit_date,price,"
                "freight_value\n")
        for oid, k, pid, price, freight in items:
            f.write("%s,%d,%s,s1,2017-10-06 11:07:15,%s,%s\n" % (oid, k, pid, price, freight))
    return fo, fp, fi, orders, pays, items


def olist_utc_ms(text):
    if not text:
        return None
    return int((parse_date(text) + datetime.timedelta(hours=3)).timestamp() * 1000)


def test_olist(work):
    fo, fp, fi, orders, pays, items = gen_olist(work)
    p = run(["replay", "olist", fi, fo, fp, "--stdout"])  # any order
    recs = parse_stdout(p.stdout)
    check_stream(recs)
    by = collections.defaultdict(dict)
    for _t, _k, e in recs:
        by[e["order_id"]][e["type"]] = e
    types = collections.Counter()
    for oid, cid, status, ts in orders:
        ev = by[oid]
        ms = [olist_utc_ms(x) for x in ts]
        opays = sorted([x for x in pays if x[0] == oid], key=lambda x: x[1])
        oitems = [x for x in items if x[0] == oid]
        amount = sum(cents(x[3]) for x in opays)
        c = ev["order_created"]
        assert c["ts"] == ms[0] and c["user_id"] == cid and c["currency"] == "BRL", c
        assert c["amount"] == amount, (c, amount)
        if oitems:
            assert [(i["product_id"], i["qty"], i["price"]) for i in c["items"]] == \
                [(x[2], 1, cents(x[3])) for x in oitems], c
        else:
            assert c["items"] == [{"product_id": "olist-" + oid, "qty": 1, "price": amount}], c
        want = {"order_created"}
        if ms[1] is not None:
            want.add("order_paid")
            assert ev["order_paid"]["ts"] == ms[1]
            assert ev["order_paid"]["amount"] == amount
            assert ev["order_paid"]["payment_method"] == opays[0][2]
        if ms[2] is not None:
            want.add("order_shipped")
            assert ev["order_shipped"]["carrier"] == "olist-logistics"
        if ms[3] is not None:
            want.add("order_delivered")
        if status == "canceled":
            want.add("order_cancelled")
            assert ev["order_cancelled"]["ts"] == max(x for x in ms if x is not None)
            assert ev["order_cancelled"]["reason"] == "canceled"
        assert set(ev) == want, (oid, status, set(ev), want)
        types.update(want)
    assert types["order_cancelled"] > 0 and types["order_delivered"] > 0, types
    print("olist: %d orders, %d events as expected (%s)" % (len(orders), len(recs),
                                                             dict(types)))

    # without payments and items: one made-up item of value 0
    p2 = run(["replay", "olist", fo, "--stdout"])
    for _t, _k, e in parse_stdout(p2.stdout):
        if e["type"] == "order_created":
            assert e["items"] == [{"product_id": "olist-" + e["order_id"], "qty": 1,
                                   "price": 0}], e
    # a products file is none of the three
    prod = os.path.join(work, "products.csv")
    with open(prod, "w") as f:
        f.write('"product_id","product_category_name"\n"a",perfumaria\n')
    pe = run(["replay", "olist", fo, prod, "--stdout"], check=False)
    assert pe.returncode == 1 and pe.stdout == ""
    assert "is not an Olist orders, payments or items file" in pe.stderr, pe.stderr
    # the real sample, if present: it must load without a skipped row
    real = "/work/shared/data/olist/sample_1k"
    if os.path.isdir(real):
        pr = run(["replay", "olist"] + [os.path.join(real, n) for n in (
            "olist_orders_dataset.csv", "olist_order_payments_dataset.csv",
            "olist_order_items_dataset.csv")] + ["--stdout"])
        assert ", 0 skipped" in pr.stderr.splitlines()[-1], pr.stderr
        print("olist sample_1k:", pr.stderr.strip().splitlines()[-1])


# ---------------------------------------------------------------- YOOCHOOSE

def test_yoochoose(work):
    rnd = random.Random(5)
    files, clicks = [], []
    t = 1396860669
    for part in range(2):
        path = os.path.join(work, "yc-%d.txt" % part)
        with open(path, "w") as f:
            f.write("SessionId\tItemId\tTime\n")
            for s in range(20):
                sid = part * 100 + s
                for k in range(rnd.randrange(2, 6)):
                    tm = "%d.%03d%d" % (t + rnd.randrange(5000), rnd.randrange(1000),
                                        rnd.randrange(10))
                    item = 214530000 + rnd.randrange(100)
                    f.write("%d\t%d\t%s\n" % (sid, item, tm))
                    clicks.append((sid, k, item, cents(tm, 3)))
        files.append(path)
    p = run(["replay", "yoochoose"] + files + ["--stdout"])
    recs = parse_stdout(p.stdout)
    check_stream(recs)
    got = sorted((int(e["session_id"]), int(e["id"].rsplit("-", 1)[1]), int(e["product_id"]),
                  e["ts"]) for _t, _k, e in recs)
    assert got == sorted(clicks), "yoochoose clicks differ"
    for _t, _k, e in recs:
        assert e["type"] == "product_view" and e["user_id"] == "yc-" + e["session_id"]
    # ties keep input order: stable sort of (ts, input position)
    order = [(c[3], i) for i, c in enumerate(clicks)]
    want_ids = ["yc-%d-%d" % (clicks[i][0], clicks[i][1]) for _ts, i in sorted(order)]
    assert [e["id"] for _t, _k, e in recs] == want_ids
    print("yoochoose: %d clicks from 2 files" % len(recs))


# ---------------------------------------------------------------- pacing

def test_speed(work):
    path = os.path.join(work, "paced.csv")
    with open(path, "w") as f:
        f.write(HEADER)
        f.write("1,A,a,1,2011-01-01 10:00:00,1.00,1,UK\n")
        f.write("2,A,a,1,2011-01-01 10:00:01,1.00,1,UK\n")
        f.write("3,A,a,1,2011-01-01 10:00:02,1.00,1,UK\n")
    t0 = time.monotonic()
    fast = run(["replay", "online-retail", path, "--stdout"])
    t_fast = time.monotonic() - t0
    t0 = time.monotonic()
    slow = run(["replay", "online-retail", path, "--stdout", "--speed", "1"])
    t_slow = time.monotonic() - t0
    t0 = time.monotonic()
    run(["replay", "online-retail", path, "--stdout", "--speed", "4"])
    t_quad = time.monotonic() - t0
    assert slow.stdout == fast.stdout
    assert t_fast < 1.0, t_fast
    assert 1.9 <= t_slow <= 3.0, t_slow
    assert 0.45 <= t_quad <= 1.3, t_quad
    bad = run(["replay", "online-retail", path, "--speed", "0"], check=False)
    assert bad.returncode == 2 and "--speed expects a number > 0" in bad.stderr
    both = run(["replay", "online-retail", path, "--speed", "2", "--as-fast-as-possible"],
               check=False)
    assert both.returncode == 2
    print("pacing: as fast as possible %.2f s, --speed 1 %.2f s, --speed 4 %.2f s" % (
        t_fast, t_slow, t_quad))


def main():
    work = workdir("replay")
    path, want, n = test_retail(work)
    test_olist(work)
    test_yoochoose(work)
    test_speed(work)
    test_retail_broker(work, path, want, n)
    shutil.rmtree(work, ignore_errors=True)
    print("ok")


if __name__ == "__main__":
    main()
