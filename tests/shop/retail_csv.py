"""A small Online Retail CSV for the tests (the real file stays in
../shared/data), and the direct computation DESIGN.md's mapping implies:
per UTC day, the orders (invoices not starting with C that have a row with
Quantity > 0 and UnitPrice > 0) and their GMV, and the refund totals
(C invoices: sum of |Quantity| x round(UnitPrice x 100))."""
import csv
import datetime
import io
import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "bench"))
import online_retail_direct  # noqa: E402


def generate(seed=1, invoices=400, days=6):
    """Returns the CSV text: invoices over `days` days from 2010-12-01, with
    cancellations (C...), bad-debt adjustments (A..., negative price), zero
    prices, guests, quoted descriptions with commas, both date formats."""
    rnd = random.Random(seed)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
                "CustomerID", "Country"])
    start = datetime.datetime(2010, 12, 1, 8, 0)
    prices = ["2.55", "3.39", "0.85", "1.25", "4.95", "0.665", "1.005", "12.75", "0.42", "7.95"]
    for k in range(invoices):
        when = start + datetime.timedelta(minutes=rnd.randrange(days * 24 * 60))
        kind = rnd.random()
        inv = str(536365 + k)
        if kind < 0.12:
            inv = "C" + inv
        elif kind < 0.14:
            inv = "A" + inv
        cust = "" if rnd.random() < 0.2 else ("%d.0" % rnd.randrange(12346, 18287)
                                                if rnd.random() < 0.8 else str(rnd.randrange(12346, 18287)))
        if rnd.random() < 0.3:
            date = "%d/%d/%d %d:%02d" % (when.month, when.day, when.year, when.hour, when.minute)
        else:
            date = when.strftime("%Y-%m-%d %H:%M:00")
        for _ in range(rnd.randrange(1, 6)):
            qty = rnd.randrange(1, 25)
            price = rnd.choice(prices)
            if inv.startswith("C"):
                qty = -qty
            elif inv.startswith("A"):
                price = "-" + price
            elif rnd.random() < 0.05:
                price = "0"
            elif rnd.random() < 0.03:
                qty = -qty
            desc = rnd.choice(["WHITE HANGING HEART T-LIGHT HOLDER", "SET 7 BABUSHKA NESTING BOXES",
                               "GLASS STAR FROSTED T-LIGHT HOLDER", "HAND WARMER, RED POLKA DOT",
                               "POPPY'S PLAYHOUSE \"KITCHEN\""])
            w.writerow([inv, "8%04d" % rnd.randrange(2000), desc, qty, date, price, cust,
                        "United Kingdom"])
    return out.getvalue()


def per_day(text):
    """{day: [orders, gmv_cents, refund_cents]} from the CSV text: the
    benchmark's direct computation (bench/online_retail_direct.py)."""
    return online_retail_direct.per_day(io.StringIO(text))


def per_day_from_states(states):
    """The same figures from shop.order-state values (dicts)."""
    days = {}
    for s in states:
        if s.get("created_ts") is not None:
            d = datetime.datetime.fromtimestamp(s["created_ts"] / 1000, datetime.timezone.utc).strftime("%Y-%m-%d")
            e = days.setdefault(d, [0, 0, 0])
            e[0] += 1
            e[1] += s["amount"]
        for f in s.get("refunds", []):
            d = datetime.datetime.fromtimestamp(f["ts"] / 1000, datetime.timezone.utc).strftime("%Y-%m-%d")
            days.setdefault(d, [0, 0, 0])[2] += f["amount"]
    return days
