#!/usr/bin/env python3
"""Turns the raw lines of bench/run.sh into BENCHMARKS.md (markdown on stdout).

  report.py --raw RAW_FILE --command "bench/run.sh ..."
  report.py --soak-only RAW_FILE...   only the memory-under-load section, from SOAK lines
  report.py ... --previous OLD_BENCHMARKS.md
      a run of a subset of the scenarios: every section, table row and target the run did not
      produce is copied from OLD_BENCHMARKS.md and marked as from the earlier run (with its commit
      and command); the earlier raw lines are kept below this run's

Raw lines: `MACHINE key=value`, `ARGON2 hash_raw_ms=.. verify_phc_ms=..`, `BENCH ...` (the anchors'
bench.sh format, `tag=` naming the scenario), `MEM target=.. kind=..`, `SOAK target=..` (bench/soak.sh;
one column each in the memory-under-load table). Lines starting with `#`
(runs spoiled by other processes and repeated) and lines with `contaminated=1` are ignored.
Medians are over rounds; a ratio is the ratio of the medians, with the spread of the per-round
ratios (the i-th run of one target paired with the i-th run of the other: same round).
"""

import argparse
import re
import statistics
import sys
from collections import defaultdict


def parse_kv(line):
    out = {}
    for tok in line.split()[1:]:
        if "=" in tok:
            k, v = tok.split("=", 1)
            out[k] = v
    return out


def load(path):
    machine, argon2, bench, mem = {}, {}, defaultdict(list), defaultdict(list)
    mem["soak"] = []
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            kind = line.split(" ", 1)[0]
            if kind == "MACHINE":
                key, _, value = line[len("MACHINE ") :].partition("=")
                machine[key] = value
            elif kind == "ARGON2":  # one per round
                for k, v in parse_kv(line).items():
                    argon2.setdefault(k, []).append(float(v))
            elif kind == "BENCH":
                kv = parse_kv(line)
                if kv.get("contaminated") == "1":
                    continue
                bench[(kv.get("tag", ""), kv["target"], kv["method"], kv["path"])].append(kv)
            elif kind == "SOAK":
                mem["soak"].append(parse_kv(line))
            elif kind == "MEM":
                kv = parse_kv(line)
                mem[(kv["target"], kv["kind"])].append(kv)
    return machine, argon2, bench, mem


def med(values):
    return statistics.median(values) if values else None


def fmt_num(x, digits=0):
    if x is None:
        return "–"
    if digits == 0:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def fmt_ms(x):
    if x is None:
        return "–"
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def fmt_ratio(r):
    return "–" if r is None else f"{r:.3f}"


class Runs:
    """The runs of one (scenario, target, method, path)."""

    def __init__(self, runs):
        self.runs = runs

    def col(self, key):
        out = []
        for r in self.runs:
            try:
                out.append(float(r[key]))
            except (KeyError, ValueError):
                pass
        return out

    @property
    def rps(self):
        return med(self.col("rps"))

    @property
    def p50(self):
        return med(self.col("p50_ms"))

    @property
    def p99(self):
        return med(self.col("p99_ms"))

    @property
    def cpu_us(self):
        per = [float(r["srv_cpu_pct"]) / 100 / float(r["rps"]) * 1e6 for r in self.runs
               if r.get("srv_cpu_pct", "NA") != "NA" and float(r.get("rps", 0)) > 0]
        return med(per)

    @property
    def errors(self):
        non2xx = sum(int(r.get("non2xx", 0)) for r in self.runs)
        sock = sum(sum(int(x) for x in r.get("sock_err", "0/0/0/0").split("/")) for r in self.runs)
        starved = sum(int(r.get("starved", 0) or 0) for r in self.runs)
        no_token = sum(int(r.get("no_token", 0) or 0) for r in self.runs)
        notes = []
        if non2xx:
            notes.append(f"non-2xx {non2xx}")
        if sock:
            notes.append(f"socket errors {sock}")
        if starved:
            notes.append(f"starved {starved}")
        if no_token:
            notes.append(f"no token {no_token}")
        return ", ".join(notes) or "0"

    @property
    def foreign(self):
        vals = [float(r["foreign_cpu_pct"]) for r in self.runs if r.get("foreign_cpu_pct", "NA") != "NA"]
        return max(vals) if vals else None


def ratio(a, b):
    """(ratio of medians, min of per-round ratios, max) of a ÷ b."""
    if a is None or b is None or a.rps is None or not b.rps:
        return None, None, None
    pairs = [x / y for x, y in zip(a.col("rps"), b.col("rps")) if y > 0]
    return a.rps / b.rps, (min(pairs) if pairs else None), (max(pairs) if pairs else None)


def ratio_cell(a, b):
    r, lo, hi = ratio(a, b)
    if r is None:
        return "–"
    if lo is None or len(a.runs) < 2:
        return f"**{r:.2f}**"
    return f"**{r:.2f}** ({lo:.2f}–{hi:.2f})"


def ratio_cell_for(base, rr, inverted):
    if base is None or base is rr:
        return "–"
    if inverted:
        return ratio_cell(rr, base) + f" (this ÷ {inverted})"
    return ratio_cell(base, rr)


def soak_section(soaks):
    """Markdown lines of the memory-under-load table: one column per SOAK line."""
    if not soaks:
        return []

    def mb(s, key):
        v = s.get(key)
        return "–" if v in (None, "") else f"{int(v) * 1024 / 1e6:.1f} MB"

    def delta(s, key):
        v = s.get(key)
        return "–" if v in (None, "") else f"{int(v) * 1024 / 1e6:+.1f} MB"

    def minutes(s):
        d = int(s.get("dur_s", "0"))
        return f"{d // 60} minutes" if d % 60 == 0 else f"{d} s"

    out = ["## 6. Memory under load", ""]
    s0 = soaks[0]
    out.append(
        f"`bench/soak.sh` (`{s0.get('cmd', 'bench/soak.sh').replace('+', ' ')}`): keycard on a fresh SQLite "
        "database with its defaults (Argon2id m=19456 KiB, t=2, p=1; hash concurrency = its CPUs = 1, "
        "pinned to CPU 1), a login flood (wrk, 64 connections), then a mixed load of 70 % `GET /protected`, "
        "20 % `GET /user`, 5 % `POST /token/refresh` (every request rotating) and 5 % `POST /login` "
        "from 64 connections; RSS (`/proc/PID/status` VmRSS, MB = 10^6 bytes) sampled every "
        f"{s0.get('interval_s', '30')} s. The mixed load's rate is bounded by its logins (one Argon2id "
        "hash at a time on the server's core).")
    out.append("")
    out.append("| what | " + " | ".join(s.get("target", "?") for s in soaks) + " |")
    out.append("|---|" + "---:|" * len(soaks))

    def row(label, f):
        out.append(f"| {label} | " + " | ".join(f(s) for s in soaks) + " |")

    row("RSS just after start (1 s after the first `200`)", lambda s: mb(s, "start_kib"))
    row("RSS after a login flood", lambda s: mb(s, "flood_kib") + f" ({int(s.get('flood_requests', 0)):,} logins "
        f"in {s.get('flood_s', '?')} s)")
    row("RSS when the mixed load starts", lambda s: mb(s, "soak0_kib"))
    row("RSS after its first sample", lambda s: mb(s, "soak30_kib"))
    row("RSS at its end", lambda s: mb(s, "end_kib"))
    row("peak of the samples", lambda s: mb(s, "max_kib"))
    row(f"**RSS growth over {minutes(s0)}** (start → end of the mixed load)", lambda s: delta(s, "growth_kib"))
    row("the same from the first sample (warmed up) to the end", lambda s: delta(s, "drift_kib"))
    row("requests (errors: non-2xx, socket)", lambda s: f"{int(s.get('requests', 0)):,} "
        f"({s.get('non2xx', '?')}, {int(s.get('err_connect', 0)) + int(s.get('err_read', 0)) + int(s.get('err_write', 0)) + int(s.get('err_timeout', 0))})")
    row("of which `/protected` / `/user` / refresh / login", lambda s: " / ".join(
        f"{int(s.get(k, 0)):,}" for k in ("protected", "user", "refresh", "login")))
    row("req/s", lambda s: fmt_num(float(s.get("rps", 0))))
    row("threads at the end", lambda s: s.get("threads_end", "–"))
    row("extra server environment", lambda s: "–" if s.get("env", "none") == "none" else f"`{s['env']}`")
    row("commit", lambda s: f"`{s.get('git', '?')}`")
    out.append("")
    for s in soaks:
        series = s.get("series", "")
        if series:
            pts = [p.split("/") for p in series.split(":") if "/" in p]
            out.append(f"RSS samples of *{s.get('target', '?')}* (s: MB): " + ", ".join(
                f"{t}: {int(k) * 1024 / 1e6:.1f}" for t, k in pts) + ".")
            out.append("")
    return out


RAW_TITLE = "Raw result lines"
EARLIER = "*(earlier run)*"


def split_sections(lines):
    """[(title or None, [lines])]: the text before the first `## ` heading, then one per heading."""
    secs = [(None, [])]
    for line in lines:
        if line.startswith("## "):
            secs.append((line[3:].strip(), [line]))
        else:
            secs[-1][1].append(line)
    return secs


def cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


def section_number(title):
    head = (title or "").split(".", 1)[0]
    return int(head) if head.isdigit() else None


def merge_previous(out, previous, command):
    """Keeps what this run did not measure from the report it replaces (see the module doc)."""
    prev_lines = previous.splitlines()
    commit, prev_cmd = "?", "?"
    for i, line in enumerate(prev_lines):
        if line.startswith("Settings:") and "Commit: `" in line:
            commit = line.split("Commit: `", 1)[1].split("`", 1)[0]
        if line == "```" and prev_cmd == "?" and i + 1 < len(prev_lines) and prev_lines[i + 1].startswith("bench/"):
            prev_cmd = prev_lines[i + 1]
    origin = f"the previous report (commit `{commit}`, `{prev_cmd}`)"
    prev = dict((t, ls) for t, ls in split_sections(prev_lines) if t)
    new = split_sections(out)
    new_titles = {t for t, _ in new if t}
    merged = []
    for title, lines in new:
        old = prev.get(title)
        if title and old and title != RAW_TITLE:
            lines = merge_section(title, lines, old, origin)
        merged.append((title, lines))
    # Whole sections this run did not produce: numbered ones in their place, the others before the
    # analysis.
    for title, lines in split_sections(prev_lines):
        if not title or title in new_titles or title == RAW_TITLE or section_number(title) is None:
            continue
        body = list(lines)
        if not any(EARLIER_SECTION_MARK in l for l in body):
            body[1:1] = ["", f"> {EARLIER_SECTION_MARK}: this scenario was not run by `{command}`; the section is "
                             f"copied unchanged from {origin}."]
        n = section_number(title)
        at = len(merged)
        for i, (t, _) in enumerate(merged):
            k = section_number(t)
            if (k is not None and k > n) or (t and t.startswith("Microbenchmarks")):
                at = i
                break
        merged.insert(at, (title, body))
    # The earlier raw lines, below this run's.
    old_raw = prev.get(RAW_TITLE)
    result = [l for _, ls in merged for l in ls]
    if old_raw:
        result += ["", f"Raw lines of {origin}, from which the sections and rows marked as from the earlier run come:", ""]
        result += old_raw[1:]
    return result


EARLIER_SECTION_MARK = "From the earlier run"


def merge_section(title, lines, old, origin):
    """Rows of the old section's first table that the new one lacks, marked; targets not measured
    now, from the old table; divan blocks of the old microbenchmark section the new one lacks."""
    lines = list(lines)
    if title.startswith("Microbenchmarks"):
        blocks, cur = [], None
        for l in old:
            if l == "```":
                if cur is None:
                    cur = []
                else:
                    blocks.append(cur)
                    cur = None
            elif cur is not None:
                cur.append(l)
        have = {l.split()[0] for l in lines if l and not l.startswith(("`", "#", "```", "│", "├", "╰"))}
        for b in blocks:
            if b and b[0].split()[0] not in have:
                lines += [f"{b[0].split()[0]}: {EARLIER} not run this time; from {origin}:", "", "```"] + b + ["```", ""]
        return lines
    old_rows = [l for l in old if l.startswith("| ") and not l.startswith("|---")]
    new_idx = [i for i, l in enumerate(lines) if l.startswith("| ") and not l.startswith("|---")]
    if not new_idx or not old_rows:
        return lines
    if title.startswith("Targets"):
        def key(what):  # "(8 probe connections)" is "(? probe connections)" when not measured
            return re.sub(r"\([^)]*\)", "", what).strip()

        old_by = {key(cells(l)[0]): l for l in old_rows[1:]}
        for i in new_idx[1:]:
            c = cells(lines[i])
            o = old_by.get(key(c[0]))
            if c[2] == "–" and o:
                oc = cells(o)
                if oc[2] != "–":
                    m = oc[2] if EARLIER in oc[2] else f"{oc[2]} {EARLIER}"
                    lines[i] = f"| {oc[0]} | {c[1]} | {m} | {oc[3]} |"
        if any(EARLIER in lines[i] for i in new_idx):
            at = new_idx[-1] + 1
            lines[at:at] = ["", f"{EARLIER}: not measured by this run; the figure and verdict are from {origin}."]
        return lines
    have = {tuple(cells(lines[i])[:2]) for i in new_idx}
    have_plain = {(a.replace(EARLIER, "").strip(), b) for a, b in have}
    extra = []
    for l in old_rows[1:]:
        c = cells(l)
        if (c[0].replace(EARLIER, "").strip(), c[1]) in have_plain:
            continue
        if EARLIER not in c[0]:
            c[0] = f"{c[0]} {EARLIER}"
        extra.append("| " + " | ".join(c) + " |")
    if extra:
        at = new_idx[-1] + 1
        lines[at:at] = extra + ["", f"Rows marked {EARLIER} were not measured by this run: copied from {origin}; "
                                    "their ratio is to that run's keycard row."]
    return lines


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--soak-only":
        soaks = []
        for path in sys.argv[2:]:
            soaks.extend(load(path)[3]["soak"])
        print("\n".join(soak_section(soaks)))
        return 0
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--command", required=True)
    ap.add_argument("--micro", action="append", default=[], help="divan output to include verbatim")
    ap.add_argument("--analysis", help="hand-written markdown appended as the analysis section")
    ap.add_argument("--previous", help="the report this one replaces: what this run did not measure is kept")
    args = ap.parse_args()
    machine, argon2, bench, mem = load(args.raw)

    def runs(tag, target, path, method="GET"):
        r = bench.get((tag, target, method, path))
        return Runs(r) if r else None

    out = []
    w = out.append
    w("# keycard benchmarks")
    w("")
    w("Generated by [`bench/run.sh`](bench/run.sh); do not edit by hand. Reproduce with:")
    w("")
    w("```")
    w(args.command)
    w("```")
    w("")
    w(f"Settings: {machine.get('settings', '?')}. Commit: `{machine.get('git', '?')}`.")
    w("")
    w("## Machine")
    w("")
    w("| CPUs (`nproc`) | CPU model | memory | kernel | rustc | load generator |")
    w("|---|---|---|---|---|---|")
    w(f"| {machine.get('nproc', '?')} | {machine.get('cpu', '?')} | {machine.get('memory', '?')} | "
      f"{machine.get('kernel', '?')} | {machine.get('rustc', '?')} | {machine.get('wrk', '?')}, 1 thread |")
    w("")
    w("Every server is pinned to CPU 1 and wrk to CPU 0 (`taskset`), as in `../shared/anchors`: each "
      "number is **one server core** driven by one load-generator core, over loopback. Throughput runs "
      "alternate between targets (A B A B, the order rotated every round); medians over the rounds. "
      "Ratios compare runs of the same invocation; in parentheses the range of the per-round ratios.")
    w("")

    # -- targets ---------------------------------------------------------------------------
    kc_prot = runs("protected", "keycard", "/protected")
    rf_prot = runs("protected", "rust_floor", "/protected")
    rf_rev = runs("protected", "rust_floor", "/protected_revocation")
    kc_rev = runs("protected", "keycard_revoked", "/protected")
    fl_prot = runs("protected", "flask_seed", "/protected")
    kc_many = runs("protected_many", "keycard", "/protected")
    kc_rev_many = runs("protected_many", "keycard_revoked", "/protected")
    kc_user = runs("user", "keycard", "/user")
    rf_user = runs("user", "rust_floor", "/protected")
    fl_user = runs("user", "flask_seed", "/user")
    kc_ref = runs("refresh", "keycard", "/token/refresh", "POST")
    lib_rf = runs("library", "rust_floor", "/protected")
    lib_simple = runs("library", "example_simple", "/protected")
    lib_claims = runs("library", "example_additional_data", "/protected")
    lib_cookie = runs("library", "example_jwt_locations", "/protected", "POST")
    kc_login = runs("login", "keycard", "/login", "POST")
    fl_login = runs("login", "flask_seed", "/login", "POST")
    flood = runs("flood", "keycard", "/login", "POST")
    flood_probe = runs("flood_probe", "keycard", "/protected")
    probe = runs("probe", "keycard", "/protected")

    def mem_med(target, kind, key):
        vals = [float(r[key]) for r in mem.get((target, kind), []) if key in r]
        return med(vals)

    idle_kib = mem_med("keycard", "startup_empty", "idle_rss_kib")
    rev_kib = mem_med("keycard", "startup_revoked", "idle_rss_kib")
    conns_kib = mem_med("keycard", "conns", "rss_kib")
    argon2_runs = argon2
    argon2 = {k: med(v) for k, v in argon2_runs.items()}
    hash_rate = 1000 / argon2["hash_raw_ms"] if argon2.get("hash_raw_ms") else None
    verify_rate = 1000 / argon2["verify_phc_ms"] if argon2.get("verify_phc_ms") else None

    rows = []

    def target(name, bar, value, ok):
        verdict = "–" if ok is None else ("met" if ok else "**missed**")
        rows.append(f"| {name} | {bar} | {value} | {verdict} |")

    r = ratio(kc_prot, rf_prot)[0]
    target("`GET /protected` ÷ rust_floor `/protected`", "≥ 0.90", fmt_ratio(r), None if r is None else r >= 0.90)
    r = ratio(kc_user, rf_user)[0]
    target("`GET /user` ÷ rust_floor `/protected`", "≥ 0.60", fmt_ratio(r), None if r is None else r >= 0.60)
    v = kc_ref.rps if kc_ref else None
    target("`POST /token/refresh`, every request rotating", "≥ 10,000 req/s", fmt_num(v),
           None if v is None else v >= 10_000)
    v = kc_login.rps / hash_rate if kc_login and hash_rate else None
    target("`POST /login` ÷ raw Argon2id hashes/s (same parameters, same core)", "≥ 0.90", fmt_ratio(v),
           None if v is None else v >= 0.90)
    v = flood_probe.p99 if flood_probe else None
    target(f"`GET /protected` p99 during a login flood ({flood_probe.runs[0]['conns'] if flood_probe else '?'} "
           "probe connections)", "≤ 10 ms", fmt_ms(v) + " ms" if v is not None else "–",
           None if v is None else v <= 10)
    r = ratio(kc_rev, kc_prot)[0]
    target("`GET /protected` with 1,000,000 revoked ids ÷ without (one token)", "≥ 0.95", fmt_ratio(r),
           None if r is None else r >= 0.95)
    r = ratio(kc_rev_many, kc_many)[0]
    c = (kc_many.cpu_us / kc_rev_many.cpu_us) if kc_many and kc_rev_many and kc_many.cpu_us and kc_rev_many.cpu_us else None
    target("the same, a different token on every request (cold lookups); in parentheses: server CPU per "
           "request without ÷ with", "≥ 0.95", fmt_ratio(r) + (f" ({c:.3f})" if c else ""),
           None if r is None else r >= 0.95)
    def mb(kib):  # the bars are in MB (10^6 bytes); RSS is read in KiB
        return None if kib is None else kib * 1024 / 1e6

    v = mb(rev_kib - idle_kib) if rev_kib is not None and idle_kib is not None else None
    target("RSS added by 1,000,000 revoked ids", "≤ 100 MB", fmt_num(v, 1) + " MB" if v is not None else "–",
           None if v is None else v <= 100)
    v = mb(idle_kib)
    target("idle RSS", "≤ 20 MB", fmt_num(v, 1) + " MB" if v is not None else "–", None if v is None else v <= 20)
    v = mb(conns_kib)
    n_conns = mem.get(("keycard", "conns"), [{}])[0].get("n", "10000")
    target(f"RSS with {int(n_conns):,} idle connections", "≤ 150 MB", fmt_num(v, 1) + " MB" if v is not None else "–",
           None if v is None else v <= 150)

    w("## Targets (issue 6)")
    w("")
    w("| what | bar | measured | |")
    w("|---|---|---|---|")
    out.extend(rows)
    w("")

    rows = []
    r = ratio(kc_prot, rf_prot)[0]
    target("`GET /protected` ÷ rust_floor `/protected` (server through keycard-axum's public API)", "≥ 0.95",
           fmt_ratio(r), None if r is None else r >= 0.95)
    r = ratio(kc_user, rf_user)[0]
    target("`GET /user` ÷ rust_floor `/protected`", "≥ 0.95", fmt_ratio(r), None if r is None else r >= 0.95)
    w("## Targets (issue 12: no slowdown)")
    w("")
    w("| what | bar | measured | |")
    w("|---|---|---|---|")
    out.extend(rows)
    w("")

    # -- issue 13: the signing algorithms -----------------------------------------------------
    ALGS = ("ES256", "EdDSA", "RS256")
    alg_rf = runs("algorithms", "rust_floor", "/protected")
    alg = {t: runs("algorithms", t, "/protected") for t in
           ["floor_hs256", "keycard_hs256"] + [f"{p}_{a.lower()}{s}" for a in ALGS
                                               for p, s in (("floor", ""), ("keycard", ""), ("keycard", "_nocache"))]}
    rows = []
    for a in ALGS:
        lc = a.lower()
        r = ratio(alg[f"keycard_{lc}"], alg_rf)[0]
        target(f"`GET /protected`, {a}, one token repeated (verified-token cache) ÷ rust_floor HS256 `/protected`",
               "≥ 0.90", fmt_ratio(r), None if r is None else r >= 0.90)
        r = ratio(alg[f"keycard_{lc}_nocache"], alg[f"floor_{lc}"])[0]
        target(f"`GET /protected`, {a}, cache off (every request verifies) ÷ floor_es256 {a} `/protected`",
               "≥ 0.95", fmt_ratio(r), None if r is None else r >= 0.95)
    w("## Targets (issue 13)")
    w("")
    w("The issue's bars are for ES256; the EdDSA and RS256 rows hold them to the same. "
      "Details in *8. Algorithms (issue 13)*.")
    w("")
    w("| what | bar | measured | |")
    w("|---|---|---|---|")
    out.extend(rows)
    w("")

    # -- issue 15: the resource server (JWKS verifier + Shared Signals revocation feed) ------------
    rs_rf = runs("resource_server", "rust_floor", "/protected")
    rs_floor = runs("resource_server", "floor_es256", "/protected")
    rs_cached = runs("resource_server", "resource_server", "/protected")
    rs_nocache = runs("resource_server", "resource_server_nocache", "/protected")
    rows = []
    r = ratio(rs_cached, rs_rf)[0]
    target("resource server `GET /protected`, ES256, one token repeated (verified-token cache) ÷ rust_floor "
           "HS256 `/protected`", "≥ 0.90", fmt_ratio(r), None if r is None else r >= 0.90)
    r = ratio(rs_nocache, rs_floor)[0]
    target("resource server `GET /protected`, ES256, cache off (every request verifies) ÷ floor_es256 ES256 "
           "`/protected`", "≥ 0.95", fmt_ratio(r), None if r is None else r >= 0.95)
    w("## Targets (issue 15)")
    w("")
    w("The resource server is held to the server's bars (issue 15, 5: *the resource server's /protected "
      "against the floor, same target as the server*). Details in *9. Resource server (issue 15)*.")
    w("")
    w("| what | bar | measured | |")
    w("|---|---|---|---|")
    out.extend(rows)
    w("")

    # -- throughput tables -------------------------------------------------------------------
    def table(title, entries, note=None):
        entries = [e for e in entries if e[2] is not None]
        if not entries:
            return
        w(f"## {title}")
        w("")
        if note:
            w(note)
            w("")
        w("| target | request | req/s | p50 ms | p99 ms | server CPU / request | runs | errors | keycard ÷ this |")
        w("|---|---|---:|---:|---:|---:|---:|---|---:|")
        for entry in entries:
            label, request, rr, base = entry[:4]
            inverted = len(entry) > 4 and entry[4]
            cpu = None if rr.runs[0].get("tag", "").startswith("flood") else rr.cpu_us
            cpu_s = "–" if cpu is None else (f"{cpu / 1000:.1f} ms" if cpu >= 1000 else f"{cpu:.1f} µs")
            w(f"| {label} | {request} | {fmt_num(rr.rps, 1 if rr.rps < 100 else 0)} | {fmt_ms(rr.p50)} | "
              f"{fmt_ms(rr.p99)} | {cpu_s} | {len(rr.runs)} | {rr.errors} | "
              f"{ratio_cell_for(base, rr, inverted)} |")
        w("")

    table("1. `GET /protected` with a valid access token", [
        ("keycard", "GET /protected", kc_prot, None),
        ("keycard, 1,000,000 revoked ids", "GET /protected", kc_rev, kc_prot, "keycard"),
        ("keycard, 65,536 distinct tokens", "GET /protected", kc_many, kc_prot, "keycard"),
        ("keycard, 1,000,000 revoked ids, 65,536 distinct tokens", "GET /protected", kc_rev_many, kc_many,
         "keycard, distinct tokens"),
        ("rust_floor", "GET /protected", rf_prot, kc_prot),
        ("rust_floor", "GET /protected_revocation", rf_rev, kc_prot),
        ("flask_seed", "GET /protected", fl_prot, kc_prot),
    ], "keycard verifies the token strictly, checks the revocation list (by `jti` and by session), sets a "
       "request id and the security headers, and logs at the default level. rust_floor `/protected` is "
       "jsonwebtoken's HS256 verify only; `/protected_revocation` adds a jti lookup in a 1,000-entry set. "
       "The *distinct tokens* rows send a different valid token (new `jti` and `sid`, minted with the "
       "server's secret) on every request, so revocation lookups touch cold memory as real traffic does; "
       "wrk builds each of those requests in Lua, "
       "so wrk's core may bound them: compare their server CPU per request.")
    table("2. `GET /user` (account read from SQLite)", [
        ("keycard", "GET /user", kc_user, None),
        ("rust_floor", "GET /protected", rf_user, kc_user),
        ("flask_seed", "GET /user", fl_user, kc_user),
    ])
    table("3. `POST /token/refresh`, every request rotating", [
        ("keycard", "POST /token/refresh", kc_ref, None),
    ], "Each request presents a refresh token never used before and gets a new pair; the old token is "
       "consumed (a second use would end the session). `bench/refresh.lua` keeps one pool of unused tokens "
       "per wrk thread, seeded with one login per connection (and a spare), and puts each answer's new "
       "refresh token back into it, so no token is ever sent twice (errors must stay 0).")
    table("7. keycard-axum alone: the examples against the floor", [
        ("rust_floor", "GET /protected", lib_rf, None),
        ("`simple` (`Jwt<()>`)", "GET /protected, bearer", lib_simple, lib_rf, "rust_floor"),
        ("`additional_data_in_access_token` (`Jwt<AppClaims>`)", "GET /protected, bearer", lib_claims, lib_rf,
         "rust_floor"),
        ("`jwt_locations` (cookie + CSRF)", "POST /protected, cookie + `X-CSRF-TOKEN`", lib_cookie, lib_rf,
         "rust_floor"),
    ], "The library without the server: three of keycard-axum's examples (`crates/keycard-axum/examples`, "
       "release builds), each a bare axum router with a `JwtLayer` and one extractor, no revocation hook, "
       "no request-id or logging middleware; run in their own rotated group with a rust_floor `/protected` "
       "run in every round, so the ratio (*this ÷ rust_floor*) pairs runs of the same round. `simple` "
       "verifies the bearer token into `Jwt<()>` (the registered claims only); "
       "`additional_data_in_access_token` into `Jwt<AppClaims>` (the generic-claims extractor: the "
       "application's `foo` claim deserialised through `#[serde(flatten)]`, the token also carrying "
       "`aud`); `jwt_locations` looks in headers, then cookies, then the JSON body, then the query string "
       "and finds the token in `access_token_cookie`; on a `POST` it compares `X-CSRF-TOKEN` with the "
       "token's `csrf` claim (`bench/cookie.lua`, the cookies from `POST /login_with_cookies`). The "
       "examples' tokens live 15 minutes, so every run logs in just before it.")
    login_note = None
    if argon2:
        n_argon2 = len(argon2_runs.get("hash_raw_ms", []))
        login_note = (f"Raw Argon2id with keycard's parameters (m=19456 KiB, t=2, p=1) on CPU 1 "
                      f"(`cargo bench -p keycard-server --bench argon2`, run next to the `/login` runs in each "
                      f"round; median of {n_argon2}): hash {argon2.get('hash_raw_ms', 0):.1f} ms "
                      f"= **{fmt_num(hash_rate, 1)} hashes/s**; parse + verify of a PHC string "
                      f"{argon2.get('verify_phc_ms', 0):.1f} ms = {fmt_num(verify_rate, 1)}/s.")
        if kc_login:
            login_note += f" keycard `POST /login` ÷ raw hash rate: **{kc_login.rps / hash_rate:.2f}**."
    table("4. `POST /login` (Argon2id) and `GET /protected` during a login flood", [
        ("keycard", "POST /login", kc_login, None),
        ("flask_seed", "POST /login", fl_login, kc_login),
        ("keycard, login flood", "POST /login", flood, None),
        ("keycard, during the flood", "GET /protected (probe)", flood_probe, None),
        ("keycard, alone", "GET /protected (probe)", probe, None),
    ], login_note)

    # -- memory ------------------------------------------------------------------------------
    if any(k != "soak" for k in mem):
        w("## 5. Memory and start-up")
        w("")
        w("| what | keycard | rust_floor |")
        w("|---|---:|---:|")

        def mib(kib):
            return "–" if kib is None else f"{kib * 1024 / 1e6:.1f} MB"

        w(f"| idle RSS (1 s after start, empty revocation list) | {mib(idle_kib)} | "
          f"{mib(mem_med('rust_floor', 'conns', 'rss_before_kib'))} |")
        w(f"| idle RSS with 1,000,000 revoked ids | {mib(rev_kib)} | – |")
        w(f"| peak RSS during start-up with 1,000,000 revoked ids | "
          f"{mib(mem_med('keycard', 'startup_revoked', 'peak_rss_kib'))} | – |")
        w(f"| RSS with {int(n_conns):,} idle keep-alive connections | {mib(conns_kib)} | "
          f"{mib(mem_med('rust_floor', 'conns', 'rss_kib'))} |")
        w(f"| per idle connection | {fmt_num(mem_med('keycard', 'conns', 'per_conn_kib'), 1)} KiB | "
          f"{fmt_num(mem_med('rust_floor', 'conns', 'per_conn_kib'), 1)} KiB |")
        s_empty = mem_med("keycard", "startup_empty", "startup_ms")
        s_rev = mem_med("keycard", "startup_revoked", "startup_ms")
        w(f"| start-up: exec to first `200` from `/healthz` | {fmt_ms(s_empty)} ms | – |")
        w(f"| start-up with 1,000,000 revoked ids | {fmt_ms(s_rev)} ms | – |")
        w("")
        w("MB = 10^6 bytes (RSS from `/proc/PID/status`). Start-up and idle RSS: median of the runs; "
          "start-up includes opening SQLite, migrations, loading the revocations "
          "and binding the listener. The idle connections each sent one `GET` and stay open; rust_floor's "
          "idle RSS is read just before its connections open.")
        w("")

    out.extend(soak_section(mem.get("soak", [])))

    # -- algorithms ---------------------------------------------------------------------------
    if alg_rf or any(alg.values()):
        def cpu_cell(rr):
            cpu = rr.cpu_us if rr else None
            return "–" if cpu is None else f"{cpu:.1f} µs"

        w("## 8. Algorithms (issue 13)")
        w("")
        w("`GET /protected` on keycard signing with each algorithm (`KEYCARD_JWT_ALGORITHM`), against "
          "rust_floor `/protected` (jsonwebtoken HS256, pure-Rust backend) and `bench/floor_es256` (the same "
          "program with `FLOOR_ALG`: jsonwebtoken 11 on its `aws_lc_rs` backend, as keycard; P-256, Ed25519 "
          "and 2048-bit RSA keys generated at start; `FLOOR_ALG=HS256` is rust_floor on aws-lc), all in one "
          "rotated group per round. *cached*: one token on every request, so from the second request on "
          "keycard's verified-token cache skips the signature check (the claims, the key-set match and the "
          "revocation lookup still run every time; HMAC tokens are never cached). *cache off*: the same with "
          "`KEYCARD_VERIFIED_TOKEN_CACHE=0`, so every request verifies the signature: keycard's uncached path, "
          "measured honestly with a repeated token (distinct asymmetric tokens would need a login, i.e. an "
          "Argon2id hash, per token). Each keycard has its own SQLite database and key.")
        w("")
        w("| target | algorithm | token | req/s | p50 ms | p99 ms | server CPU / request | runs | errors |")
        w("|---|---|---|---:|---:|---:|---:|---:|---|")

        def row(label, a, how, rr):
            if rr is None:
                return
            w(f"| {label} | {a} | {how} | {fmt_num(rr.rps)} | {fmt_ms(rr.p50)} | {fmt_ms(rr.p99)} | "
              f"{cpu_cell(rr)} | {len(rr.runs)} | {rr.errors} |")

        row("rust_floor", "HS256", "one token", alg_rf)
        row("floor_es256 (`FLOOR_ALG=HS256`)", "HS256", "one token", alg["floor_hs256"])
        row("keycard", "HS256", "one token (never cached)", alg["keycard_hs256"])
        for a in ALGS:
            lc = a.lower()
            row(f"floor_es256 (`FLOOR_ALG={a}`)", a, "one token", alg[f"floor_{lc}"])
            row("keycard", a, "one token, cached", alg[f"keycard_{lc}"])
            row("keycard", a, "one token, cache off", alg[f"keycard_{lc}_nocache"])
        w("")
        w("| algorithm | keycard cached ÷ rust_floor HS256 | keycard cache off ÷ floor, same algorithm | "
          "keycard cached ÷ cache off | signature check in keycard (CPU/request, cache off − cached) |")
        w("|---|---:|---:|---:|---:|")
        kc_hs = alg["keycard_hs256"]
        w(f"| HS256 | {ratio_cell(kc_hs, alg_rf)} | {ratio_cell(kc_hs, alg['floor_hs256'])} | – | – |")
        for a in ALGS:
            lc = a.lower()
            c, n = alg[f"keycard_{lc}"], alg[f"keycard_{lc}_nocache"]
            d = (n.cpu_us - c.cpu_us) if c and n and c.cpu_us is not None and n.cpu_us is not None else None
            w(f"| {a} | {ratio_cell(c, alg_rf)} | {ratio_cell(n, alg[f'floor_{lc}'])} | {ratio_cell(c, n)} | "
              f"{'–' if d is None else f'{d:.1f} µs'} |")
        w("")
        w("Bars (issue 13, 7): ES256 cached ≥ 0.90 × the HS256 floor; ES256 uncached ≥ 0.95 × the bare "
          "axum + jsonwebtoken ES256 floor. For HS256 the second column compares keycard with the floor on "
          "the same crypto backend (aws-lc).")
        w("")

    # -- resource server ----------------------------------------------------------------------
    if any((rs_rf, rs_floor, rs_cached, rs_nocache)):
        def cpu_cell(rr):
            cpu = rr.cpu_us if rr else None
            return "–" if cpu is None else f"{cpu:.1f} µs"

        w("## 9. Resource server (issue 15)")
        w("")
        w("`GET /protected` on keycard-jwks's `resource_server` example (`crates/keycard-jwks/examples/"
          "resource_server.rs`, release build): a bare axum router whose `JwtLayer` comes from a "
          "`JwksVerifier` (keycard's JWK Set, fetched at start) with a `RevocationFeed` (keycard's Shared "
          "Signals poll stream, RFC 8936; every token's `jti` and `sid` are looked up in its in-memory "
          "revocation set), answering `{\"logged_in_as\": sub}`. The tokens come from a keycard server "
          "with `KEYCARD_JWT_ALGORITHM=ES256` (one account registered and logged in; one access token "
          "sent on every request), which is not measured: it runs on the load generator's core (CPU 0) "
          "and only answers the feeds' long polls during the runs, so its CPU counts as foreign load. "
          "*cached*: the example's defaults, so from the second request on the verifier's verified-token "
          "cache skips the ECDSA check (claims, expiry and revocation still checked every time). *cache "
          "off*: `KEYCARD_VERIFIED_TOKEN_CACHE=0`, every request verifies the signature. Against "
          "rust_floor `/protected` (HS256) and `bench/floor_es256` with `FLOOR_ALG=ES256` (jsonwebtoken 11 "
          "on aws-lc, as keycard), all in one rotated group per round.")
        w("")
        w("| target | algorithm | token | req/s | p50 ms | p99 ms | server CPU / request | runs | errors | "
          "foreign load (max over runs, % of a core) |")
        w("|---|---|---|---:|---:|---:|---:|---:|---|---:|")

        def rs_row(label, a, how, rr):
            if rr is None:
                return
            w(f"| {label} | {a} | {how} | {fmt_num(rr.rps)} | {fmt_ms(rr.p50)} | {fmt_ms(rr.p99)} | "
              f"{cpu_cell(rr)} | {len(rr.runs)} | {rr.errors} | {fmt_num(rr.foreign)} |")

        rs_row("rust_floor", "HS256", "one token", rs_rf)
        rs_row("floor_es256 (`FLOOR_ALG=ES256`)", "ES256", "one token", rs_floor)
        rs_row("resource server", "ES256", "one token, cached", rs_cached)
        rs_row("resource server", "ES256", "one token, cache off", rs_nocache)
        w("")
        w("| algorithm | resource server cached ÷ rust_floor HS256 | resource server cache off ÷ floor_es256 "
          "ES256 | cached ÷ cache off | signature check in the resource server (CPU/request, cache off − cached) |")
        w("|---|---:|---:|---:|---:|")
        d = (rs_nocache.cpu_us - rs_cached.cpu_us) if rs_cached and rs_nocache and \
            rs_cached.cpu_us is not None and rs_nocache.cpu_us is not None else None
        w(f"| ES256 | {ratio_cell(rs_cached, rs_rf)} | {ratio_cell(rs_nocache, rs_floor)} | "
          f"{ratio_cell(rs_cached, rs_nocache)} | {'–' if d is None else f'{d:.1f} µs'} |")
        w("")
        w("Bars (issue 15, 5, with the server's bars of issue 13): cached ≥ 0.90 × the HS256 floor; cache "
          "off ≥ 0.95 × the ES256 floor. Ratios: median over the rounds, in parentheses the range of the "
          "per-round ratios.")
        w("")

    # -- microbenchmarks ----------------------------------------------------------------------
    if args.micro:
        w("## Microbenchmarks (divan, pinned to CPU 1)")
        w("")
        w("`cargo bench -p keycard-token --bench tokens` and `cargo bench -p keycard-server --bench argon2`. "
          "`is_revoked_miss` probes 65,536 different live tokens in turn, so with 1,000,000 revoked ids "
          "each lookup touches cold memory, as in the server.")
        w("")
        for path in args.micro:
            w("```")
            with open(path, encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        w(line.rstrip("\n"))
            w("```")
            w("")

    # -- analysis -----------------------------------------------------------------------------
    if args.analysis:
        try:
            with open(args.analysis, encoding="utf-8") as f:
                text = f.read().strip()
        except FileNotFoundError:
            text = ""
        if text:
            w(text)
            w("")

    # -- raw ---------------------------------------------------------------------------------
    w("## Raw result lines")
    w("")
    w("<details><summary>every line the run recorded (runs marked #CONTAMINATED were repeated)</summary>")
    w("")
    w("```")
    with open(args.raw, encoding="utf-8") as f:
        for line in f:
            w(line.rstrip("\n"))
    w("```")
    w("")
    w("</details>")
    if args.previous:
        with open(args.previous, encoding="utf-8") as f:
            out = merge_previous(out, f.read(), args.command)
    print("\n".join(out))


if __name__ == "__main__":
    sys.exit(main())
