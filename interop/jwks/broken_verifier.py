#!/usr/bin/env python3
"""A verifier broken on purpose, for selftest.py only: it follows a token's jku header (fetches
the URL) and accepts any token without checking its signature. The suite must catch both, or a
broken client could pass it. Same interface as verify_pyjwt.py (the flags are accepted, ignored)."""

import json
import sys
import urllib.request

import jwt


def main() -> int:
    tokens = [a for a in sys.argv[1:] if a.count(".") == 2 and not a.startswith("http")]
    stream = tokens or (line.strip() for line in iter(sys.stdin.readline, ""))
    for token in stream:
        if not token:
            continue
        try:
            header = jwt.get_unverified_header(token)
            if "jku" in header:
                urllib.request.urlopen(header["jku"], timeout=5).read()
            claims = jwt.decode(token, options={"verify_signature": False})
            print(json.dumps({"ok": True, "claims": claims, "header": header, "kid": header.get("kid")}), flush=True)
        except Exception as e:  # noqa: BLE001
            print(json.dumps({"ok": False, "kind": "token", "error": str(e)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
