"""The checks shared by selftest.py (against provider.py) and e2e.py (against keycard): both
clients verify genuine tokens, refuse every attack token, and follow a key rotation."""

from __future__ import annotations

import time
from typing import Callable

import attack_tokens
import common

CLIENTS = ("pyjwt", "jose")
# Every algorithm keycard can sign with plus HS256: the broad allow-list a careless service might
# configure. The key (its kty/alg) must still decide, so every attack must be refused with it too.
BROAD = ["ES256", "ES384", "EdDSA", "RS256", "PS256", "HS256"]


class Report:
    def __init__(self):
        self.rows: list[tuple[str, str, str, str, str]] = []

    def add(self, section: str, check: str, who: str, passed: bool | None, detail: str = ""):
        status = "PASS" if passed else ("INFO" if passed is None else "FAIL")
        self.rows.append((section, check, who, status, detail))
        line = f"{status}: [{section}] {check} ({who})"
        print(line + (f": {detail}" if detail and status != "PASS" else ""), flush=True)
        return passed

    def info(self, section: str, check: str, who: str, detail: str):
        self.add(section, check, who, None, detail)

    @property
    def failures(self) -> list[tuple]:
        return [r for r in self.rows if r[3] == "FAIL"]

    def table(self) -> str:
        """One line per (section, check) with each verifier's status; the attack rows of a
        section and mode are folded into one line of refused/total counts."""
        groups: dict[tuple[str, str], dict[str, list[str]]] = {}
        for section, check, who, status, _ in self.rows:
            if check.startswith("attack ") and check.endswith("]"):
                check = "attacks refused [" + check.rsplit("[", 1)[1]
            groups.setdefault((section, check), {}).setdefault(who, []).append(status)
        whos = sorted({r[2] for r in self.rows}, key=lambda w: (w not in CLIENTS, w))

        def cell(statuses: list[str] | None) -> str:
            if not statuses:
                return "-"
            if len(statuses) == 1:
                return statuses[0]
            return f"{statuses.count('PASS')}/{len(statuses)}"

        w_section = max([len("section")] + [len(s) for s, _ in groups])
        w_check = min(72, max([len("check")] + [len(c) for _, c in groups]))
        w_cell = max(7, *(len(w) for w in whos))
        head = f"{'section':<{w_section}}  {'check':<{w_check}}  " + "  ".join(f"{w:<{w_cell}}" for w in whos)
        lines = [head, "-" * len(head)]
        for (section, check), by in groups.items():
            lines.append(f"{section:<{w_section}}  {check[:w_check]:<{w_check}}  "
                         + "  ".join(f"{cell(by.get(w)):<{w_cell}}" for w in whos))
        passed = sum(r[3] == "PASS" for r in self.rows)
        lines.append(f"{passed} passed, {len(self.failures)} failed")
        return "\n".join(lines)


def sources(issuer: str, jwks_url: str) -> list[tuple[str, list[str]]]:
    return [("jwks_uri", ["--jwks-url", jwks_url]), ("discovery", ["--issuer-url", issuer])]


def check_genuine(report: Report, section: str, issuer: str, jwks_url: str, token: str, alg: str,
                  kid: str, audience: str | None, label: str = "genuine token verifies"):
    """Both clients, by JWKS URL and by discovery, with a cold cache, verify `token`."""
    for source_name, source in sources(issuer, jwks_url):
        for client in CLIENTS:
            try:
                r = common.verify_once(client, source, issuer, [alg], token, audience)
            except Exception as e:  # noqa: BLE001
                report.add(section, f"{label} ({source_name})", client, False, str(e))
                continue
            problem = None
            if not r.get("ok"):
                problem = f"refused: {r.get('kind')}: {r.get('error')}"
            elif r["claims"].get("iss") != issuer:
                problem = f"iss {r['claims'].get('iss')!r} != {issuer!r}"
            elif r["header"].get("kid") != kid or r["header"].get("alg") != alg:
                problem = f"header {r['header']} (expected alg {alg}, kid {kid})"
            report.add(section, f"{label} ({source_name})", client, problem is None, problem or "")


def check_controls(report: Report, section: str, issuer: str, jwks_url: str, token: str, alg: str,
                   audience: str | None, expired: str | None = None):
    """The wrappers really check iss, aud, the pinned list and exp: else a refusal proves little."""
    cases = [("wrong expected issuer", issuer + "/other", audience, [alg], token),
             ("alg not in the pinned list", issuer, audience, [a for a in ("ES256", "RS256") if a != alg], token)]
    if audience:
        cases.append(("wrong expected audience", issuer, audience + "-other", [alg], token))
    if expired:
        cases.append(("expired token", issuer, audience, [alg], expired))
    for name, iss, aud, algs, tok in cases:
        for client in CLIENTS:
            try:
                r = common.verify_once(client, ["--jwks-url", jwks_url], iss, algs, tok, aud)
            except Exception as e:  # noqa: BLE001
                report.add(section, f"control: {name} refused", client, False, str(e))
                continue
            bad = common.check_fetch_error(r) or ("accepted" if r.get("ok") else None)
            report.add(section, f"control: {name} refused", client, bad is None, bad or "")


def check_attacks(report: Report, section: str, issuer: str, jwks: dict, jwks_url: str, alg: str,
                  audience: str | None, genuine: str | None,
                  server_check: Callable[[str], tuple[bool, str]] | None = None,
                  clients: tuple[str, ...] = CLIENTS) -> int:
    """Every attack token is refused by both clients (pinned to `alg` and with BROAD), and by the
    server when `server_check` is given; no verifier fetches the attacker's jku/x5u."""
    attacker_host = common.HitCounter({})
    try:
        attacks, attacker = attack_tokens.build(jwks, issuer, audience, genuine, attacker_url=attacker_host.url)
        attacker_host.routes = attacker.routes
        modes = [("pinned", [alg])] if alg != "HS256" else []
        modes.append(("broad", BROAD))
        if not clients:
            modes = []
        for mode, algs in modes:
            for client in clients:
                verifier = common.Verifier(client, ["--jwks-url", jwks_url], issuer, algs, audience)
                try:
                    for attack in attacks:
                        try:
                            r = verifier.verify(attack["token"])
                        except Exception as e:  # noqa: BLE001
                            report.add(section, f"attack {attack['name']} [{mode}]", client, False, str(e))
                            verifier = common.Verifier(client, ["--jwks-url", jwks_url], issuer, algs, audience)
                            continue
                        bad = common.check_fetch_error(r) or (f"ACCEPTED: {attack['why']}" if r.get("ok") else None)
                        report.add(section, f"attack {attack['name']} [{mode}]", client, bad is None, bad or "")
                finally:
                    verifier.close()
        if server_check:
            for attack in attacks:
                refused, detail = server_check(attack["token"])
                report.add(section, f"attack {attack['name']} [server]", "keycard", refused,
                           "" if refused else f"{detail}: {attack['why']}")
        hits = list(attacker_host.hits)
        report.add(section, "no verifier fetched the attacker's jku/x5u", "all", not hits,
                   f"attacker host got {hits}" if hits else "")
        # Sanity: the attacker's tokens are well-formed and really signed: its own JWKS verifies
        # them. So their refusal is about the key choice, not a broken token.
        attacker_signed = [a for a in attacks if a["name"] in ("attacker-kid", "jku-attacker", "x5u-attacker")]
        for attack in attacker_signed:
            r = common.verify_once("pyjwt", ["--jwks-url", attacker.jwks_url()], issuer,
                                   [attack_tokens.alg_of(attacker.jwk(a)) for a in attacker.keys],
                                   attack["token"], audience)
            report.add(section, f"sanity: {attack['name']} verifies against the attacker's own JWKS", "pyjwt",
                       bool(r.get("ok")), "" if r.get("ok") else f"{r.get('error')}")
        return len(attacks)
    finally:
        attacker_host.close()


def check_rotation(report: Report, section: str, issuer: str, jwks_url: str, alg: str, audience: str | None,
                   mint: Callable[[], str], rotate: Callable[[], None], deadline_s: float = 3.0):
    """Before/after a rotation: a new kid within deadline_s; old and new tokens verify with cold
    clients and with long-lived ones (cooldown 0) that have the old JWKS cached."""
    old = mint()
    old_kid = common.segments(old)[0].get("kid")
    eager = {c: common.Verifier(c, ["--jwks-url", jwks_url], issuer, [alg], audience,
                                ["--cooldown", "0"] if c == "pyjwt" else ["--cooldown-ms", "0"]) for c in CLIENTS}
    lazy = {c: common.Verifier(c, ["--jwks-url", jwks_url], issuer, [alg], audience) for c in CLIENTS}
    try:
        for c in CLIENTS:
            for name, v in (("cooldown 0", eager[c]), ("default cooldown", lazy[c])):
                r = v.verify(old)
                report.add(section, f"long-lived client ({name}) verifies the pre-rotation token", c,
                           bool(r.get("ok")), str(r.get("error", "")))
        started = time.monotonic()
        try:
            rotate()
        except Exception as e:  # noqa: BLE001
            report.add(section, "rotate", "issuer", False, str(e))
            return
        new, new_kid = None, old_kid
        while time.monotonic() - started < deadline_s:
            new = mint()
            new_kid = common.segments(new)[0].get("kid")
            if new_kid != old_kid:
                break
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        if not report.add(section, f"signs with a new kid within {deadline_s:g} s", "issuer", new_kid != old_kid,
                          f"still {old_kid} after {elapsed:.1f} s" if new_kid == old_kid else ""):
            return
        report.info(section, "time to the new kid", "issuer", f"{elapsed:.2f} s")
        published = [k.get("kid") for k in common.get_json(jwks_url).get("keys", [])]
        report.add(section, "JWKS publishes the old and the new kid", "issuer",
                   old_kid in published and new_kid in published, f"published {published}")
        for label, token, kid in (("pre-rotation token (old kid)", old, old_kid), ("post-rotation token (new kid)", new, new_kid)):
            check_genuine(report, section, issuer, jwks_url, token, alg, kid, audience, f"after rotation: {label} verifies")
        for c in CLIENTS:
            for label, token in (("new", new), ("old", old)):
                r = eager[c].verify(token)
                report.add(section, f"long-lived client (cooldown 0) verifies the {label} token after rotation", c,
                           bool(r.get("ok")), str(r.get("error", "")))
            r = lazy[c].verify(new)
            # Library behaviour, not keycard's: a client that fetched within its cooldown (30 s by
            # default in both) does not refetch for an unknown kid yet.
            report.info(section, "long-lived client with the default cooldown, new token right after rotation", c,
                        "verified" if r.get("ok") else f"refused until its cooldown ends: {r.get('error')}")
    finally:
        for v in list(eager.values()) + list(lazy.values()):
            v.close()
