#!/usr/bin/env python3
"""misses.py RUN.trace [EARLIER.trace...]: where a dating run's cache misses come from.

Reads `spark loadtest --trace` files (earlier runs first give history) and prints,
per endpoint, its share of lookups, its hit ratio and each miss's likely cause: cold
(never read), the write that purged it (the rules mirror the origin's Spark-Purge headers),
TTL, or an entry filled in an earlier run and gone since (a new token, eviction).
"""
import json, sys, re, collections
PRIVATE = {"own_profile", "suggestions", "matches", "conversations", "messages"}
TTL = {"suggestions": 150e6}
def load(p):
    return [json.loads(l) for l in open(p)]
run = load(sys.argv[1])
hist = []
for h in sys.argv[2:]:
    hist += load(h)
allrec = sorted(hist + run, key=lambda r: r["t"])
runset = set(id(r) for r in run)
def kind(cs):
    if not cs: return None
    if "; hit" in cs: return "hit"
    if "fwd=bypass" in cs or "fwd=request" in cs: return None
    if "fwd=stale" in cs: return "stale"
    if "stored" in cs: return "miss"
    return None  # uncacheable
def partner(u): return u + 1 if u % 2 else u - 1
def key(r):
    return (r["u"], r["p"]) if r["ep"] in PRIVATE else (0, r["p"])
last = {}       # key -> time of last read
writes = []     # (t, user, ep, path, body)
convmembers = collections.defaultdict(set)
for r in allrec:
    m = re.match(r"/api/conversations/(\d+)/", r["p"])
    if m: convmembers[m.group(1)].add(r["u"])
def purged(r, since):
    """The first write after since that purges r's entry, named."""
    u, ep, p = r["u"], r["ep"], r["p"]
    for (t, wu, wep, wp, wb, ws, wr) in reversed(writes):
        if t < since: break
        if t > r["t"]: continue
        tgt = None
        m = re.search(r'"target_id": ?(\d+)', wb or "")
        if m: tgt = int(m.group(1))
        if wep == "block":
            m = re.match(r"/api/users/(\d+)/block", wp); tgt = int(m.group(1))
        if ep == "suggestions" and wu == u and wep in ("swipe", "location", "block"): return "purged by own " + wep
        if ep == "suggestions" and wep == "block" and tgt == u: return "purged by block on user"
        if ep == "own_profile" and wu == u and wep == "update_profile": return "purged by own profile update"
        if ep in ("profile", "card_profile"):
            m = re.match(r"/api/users/(\d+)/profile", p); x = int(m.group(1))
            if wep == "update_profile" and wu == x: return "purged by owner's profile update"
            if wep == "block" and (wu == x or tgt == x): return "purged by block"
        if ep in ("matches", "conversations", "messages"):
            if wep == "block" and (wu == u or tgt == u): return "purged by block (matches tag)"
            if wep == "swipe" and ws == 201 and (wu == u or tgt == u) and '"match":{' in (wr or "").replace(" ",""): return "purged by match"
        if ep == "conversations" and wep == "send_message":
            c = re.match(r"/api/conversations/(\d+)/", wp).group(1)
            if wu == u: return "purged by own message"
            if u in convmembers[c]: return "purged by partner's message"
        if ep == "messages" and wep == "send_message":
            c = re.match(r"/api/conversations/(\d+)/", wp).group(1)
            if c == re.match(r"/api/conversations/(\d+)/", p).group(1):
                return "purged by own message" if wu == u else "purged by partner's message"
    return None
tab = collections.defaultdict(collections.Counter)
lookups = 0
seen_in_run = set()
for r in allrec:
    if r["m"] != "GET":
        writes.append((r["t"], r["u"], r["ep"], r["p"], r.get("b", ""), r["s"], r.get("r", "")))
        continue
    k = kind(r.get("cs"))
    inrun = id(r) in runset
    kk = key(r)
    if k and inrun:
        lookups += 1
        c = tab[r["ep"]]
        c["lookups"] += 1
        if k == "hit":
            c["hit"] += 1
        else:
            prev = last.get(kk)
            if prev is None: why = "cold (never read)"
            elif r["t"] - prev > TTL.get(r["ep"], 300e6): why = "ttl (last read %s)" % ("long ago")
            else:
                why = purged(r, prev) or ("revalidate (stale)" if k == "stale" else
                    "first read this run, entry gone (token/eviction)" if kk[0] and prev < run[0]["t"] and kk not in seen_in_run else "unexplained")
            c["miss: " + why] += 1
    last[kk] = r["t"]
    if inrun: seen_in_run.add(kk)
tot_miss = sum(c["lookups"] - c["hit"] for c in tab.values())
tot_hit = sum(c["hit"] for c in tab.values())
print("lookups %d  hits %d  hit ratio %.1f%%" % (lookups, tot_hit, 100.0 * tot_hit / max(lookups, 1)))
print("%-14s %7s %6s %6s %8s  causes (share of all lookups)" % ("endpoint", "lookups", "share", "hit%", "missPts"))
for ep, c in sorted(tab.items(), key=lambda kv: -(kv[1]["lookups"] - kv[1]["hit"])):
    miss = c["lookups"] - c["hit"]
    causes = ", ".join("%s %d (%.1f pts)" % (k[6:], v, 100.0 * v / lookups) for k, v in c.most_common() if k.startswith("miss: "))
    print("%-14s %7d %5.1f%% %5.1f%% %7.1f  %s" % (ep, c["lookups"], 100.0 * c["lookups"] / lookups, 100.0 * c["hit"] / c["lookups"], 100.0 * miss / lookups, causes))
