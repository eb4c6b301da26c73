#!/usr/bin/python3
"""The direct computation of DESIGN.md's Online Retail mapping, from the CSV
alone: per UTC day, orders, GMV and refund totals in pence.

usage: online_retail_direct.py FILE.csv[.zst]   prints one line per day:
    YYYY-MM-DD orders gmv refunds

Rules (DESIGN.md, "Online Retail replay"): an invoice not starting with C
is an order if it has a row with Quantity > 0 and UnitPrice > 0; its amount
is the sum of Quantity x round(UnitPrice x 100) over those rows.  A C
invoice is a refund of the sum of |Quantity| x round(UnitPrice x 100) over
all its rows.  An invoice's day is the date of its first row, read as UTC;
round() is half away from zero on the exact decimal."""
import csv
import datetime
import decimal
import io
import sys


def cents(text):
    d = decimal.Decimal(text) * 100
    return int(d.quantize(decimal.Decimal(1), rounding=decimal.ROUND_HALF_UP))


def day_of(s):
    s = s.strip()
    if "/" in s:
        d = datetime.datetime.strptime(s, "%m/%d/%Y %H:%M")
    else:
        d = datetime.datetime.strptime(s, "%Y-%m-%d %H:%M:%S")
    return d.strftime("%Y-%m-%d")


def per_day(stream):
    invoices = {}
    for r in csv.DictReader(stream):
        inv = invoices.setdefault(r["InvoiceNo"], {"day": day_of(r["InvoiceDate"]), "rows": []})
        inv["rows"].append((int(r["Quantity"]), r["UnitPrice"]))
    days = {}
    for no, inv in invoices.items():
        e = days.setdefault(inv["day"], [0, 0, 0])
        if no.startswith("C"):
            e[2] += sum(abs(q) * cents(p) for q, p in inv["rows"])
        else:
            good = [(q, p) for q, p in inv["rows"] if q > 0 and decimal.Decimal(p) > 0]
            if good:
                e[0] += 1
                e[1] += sum(q * cents(p) for q, p in good)
    return days


def open_text(path):
    raw = open(path, "rb")
    if path.endswith(".zst"):
        import zstandard
        raw = zstandard.ZstdDecompressor().stream_reader(raw)
    return io.TextIOWrapper(raw, encoding="utf-8", newline="")


if __name__ == "__main__":
    for day, (n, gmv, ref) in sorted(per_day(open_text(sys.argv[1])).items()):
        print(day, n, gmv, ref)
