"""A brute-force recomputation of the shop.kpis windows of DESIGN.md from a
list of events, for the analytics tests: every window of 1m, 1h and 1d that
holds an event, with every KPI, as the processor defines them (kpi.h):
funnel steps are reached in order per session, at the time of the event
that reaches them; aov rounds half up; conversion has 6 decimals; top lists
are by count, then smaller id, counts above zero, at most 10.  The events
must come in the order of their partitions (the simulator's order)."""
import decimal

SIZES = {"1m": 60000, "1h": 3600000, "1d": 86400000}
STEPS = [("product_view", 0, 1), ("add_to_cart", 1, 2), ("checkout", 2, 3), ("purchase", 3, 4)]
CLICKS = {"page_view", "product_view", "search", "add_to_cart", "remove_from_cart", "checkout", "purchase"}


def _new(window, start):
    return {"window": window, "start": start, "end": start + SIZES[window], "currency": "",
            "gmv": 0, "orders": 0, "paid_revenue": 0, "refunds": 0, "pv": 0,
            "users": set(), "purchasers": set(), "funnel": [0, 0, 0, 0], "units": {}, "views": {}}


def windows(events):
    """{(window, start): aggregate} for events (dicts), in partition order."""
    out = {}
    step = {}
    for e in events:
        t = e["type"]
        reached = 0
        if t in CLICKS:
            s = step.get(e["session_id"], 0)
            for typ, frm, to in STEPS:
                if t == typ and s == frm:
                    step[e["session_id"]] = to
                    reached = to
        for w, ms in SIZES.items():
            start = e["ts"] // ms * ms
            a = out.setdefault((w, start), _new(w, start))
            if t == "order_created":
                a["gmv"] += e["amount"]
                a["orders"] += 1
                cur = e.get("currency", "")
                a["currency"] = cur if a["currency"] in ("", cur) else "mixed"
                for it in e["items"]:
                    a["units"][it["product_id"]] = a["units"].get(it["product_id"], 0) + it["qty"]
            elif t == "order_paid":
                a["paid_revenue"] += e["amount"]
            elif t == "refund_issued":
                a["refunds"] += e["amount"]
            if t in ("page_view", "product_view"):
                a["pv"] += 1
            if t == "product_view":
                a["views"][e["product_id"]] = a["views"].get(e["product_id"], 0) + 1
            if t in CLICKS:
                a["users"].add(e["user_id"])
            if t == "purchase":
                a["purchasers"].add(e["user_id"])
            if reached:
                a["funnel"][reached - 1] += 1
    return out


def _top(counts, field):
    items = sorted(((-n, pid) for pid, n in counts.items() if n > 0))[:10]
    return [{"product_id": pid, field: -n} for n, pid in items]


def kpis(a):
    """The shop.kpis fields of an aggregate (without final/late_events/uv_*)."""
    aov = 0
    if a["orders"]:
        aov = int((decimal.Decimal(a["gmv"]) / a["orders"]).quantize(decimal.Decimal(1), rounding=decimal.ROUND_HALF_UP))
    uv = len(a["users"])
    conv = round(len(a["purchasers"]) / uv, 6) if uv else 0
    return {"window": a["window"], "start": a["start"], "end": a["end"], "currency": a["currency"],
            "gmv": a["gmv"], "orders": a["orders"], "aov": aov, "paid_revenue": a["paid_revenue"],
            "refunds": a["refunds"], "net_revenue": a["paid_revenue"] - a["refunds"], "pv": a["pv"],
            "uv": uv, "conversion": conv,
            "funnel": dict(zip(["product_view", "add_to_cart", "checkout", "purchase"], a["funnel"])),
            "top_products_by_units": _top(a["units"], "units"),
            "top_products_by_views": _top(a["views"], "views")}


def compare(got, want, uv_rel_error=0.0):
    """Differences between a shop.kpis value and kpis(); UV within
    uv_rel_error (3 standard errors when HLL is on)."""
    diffs = []
    for k, v in want.items():
        g = got.get(k)
        if k == "uv" and uv_rel_error:
            if abs(g - v) > max(2, 3 * uv_rel_error * v):
                diffs.append((k, g, v))
        elif k == "conversion":
            if uv_rel_error:
                continue
            if abs(g - v) > 1e-9:
                diffs.append((k, g, v))
        elif g != v:
            diffs.append((k, g, v))
    return diffs
