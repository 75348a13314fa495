"""A stand-in for a keycard port, used only to test differential.py itself (harness_test.py).

It is the original example, started the way a port is started (KEYCARD_BIND, KEYCARD_JWT_SECRET,
no arguments but the example's name) and made to behave the way the issue asks a port to:
401 where FJE answers 422, `exp` required, automatic_user_loading's integer id written as a
string `sub`. FAKE_MUTATION=<name> then breaks it in one chosen way, so that harness_test.py can
see the harness notice. Usage: fake_port.py NAME (the wrappers harness_test.py writes do this).
"""

import importlib
import os
import re
import sys
from datetime import timedelta

import jwt as pyjwt
from werkzeug.serving import run_simple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "originals"))

name = sys.argv[1]
mutation = os.environ.get("FAKE_MUTATION", "")
host, _, port = os.environ["KEYCARD_BIND"].rpartition(":")
secret = os.environ["KEYCARD_JWT_SECRET"]
assert len(secret.encode()) >= 32, "KEYCARD_JWT_SECRET must be at least 32 bytes"
assert os.environ.get("KEYCARD_REDIS_URL") == "redis://127.0.0.1:6379/0"

if mutation == "crash":
    print("fake port: crashing at start on purpose", file=sys.stderr)
    sys.exit(3)

# keycard requires exp: make PyJWT require it on the verified decode.
_decode = pyjwt.decode


def _decode_requiring_exp(*args, **kwargs):
    options = dict(kwargs.get("options") or {})
    if options.get("verify_signature", True) and mutation != "exp-optional":
        options["require"] = list(set(options.get("require", [])) | {"exp"})
    kwargs["options"] = options
    return _decode(*args, **kwargs)


pyjwt.decode = _decode_requiring_exp

mod = importlib.import_module(name)
app = mod.app
app.config["JWT_SECRET_KEY"] = secret + ("-other" if mutation == "other-secret" else "")
if mutation == "lifetime":
    app.config["JWT_ACCESS_TOKEN_EXPIRES"] = timedelta(minutes=30)
if mutation == "csrf-off":
    app.config["JWT_COOKIE_CSRF_PROTECT"] = False
if mutation == "no-refresh":
    app.after_request_funcs[None] = []
if mutation == "extra-claim":
    mod.jwt.additional_claims_loader(lambda identity: {"extra": 1})
if mutation == "expired-msg":
    from flask import jsonify

    mod.jwt.expired_token_loader(lambda h, p: (jsonify(msg="Token expired"), 401))
if mutation == "memory-blocklist":

    class _Mem(dict):
        def set(self, k, v, ex=None):
            self[k] = v

    mod.jwt_redis_blocklist = _Mem()

if name == "automatic_user_loading":
    if mutation != "int-sub":
        mod.jwt.user_identity_loader(lambda user: str(user.id))
    with app.app_context():
        mod.db.create_all()
        mod.db.session.add(mod.User(full_name="Bruce Wayne", username="batman"))
        mod.db.session.add(mod.User(full_name="Ann Takamaki", username="panther"))
        mod.db.session.add(mod.User(full_name="Jester Lavore", username="little_sapphire"))
        mod.db.session.commit()
elif name == "blocklist_database":
    with app.app_context():
        mod.db.create_all()


@app.after_request
def _like_a_port(response):
    if response.status_code == 422 and mutation != "keep-422":
        response.status_code = 401
    if mutation == "no-httponly":
        cookies = response.headers.getlist("Set-Cookie")
        response.headers.remove("Set-Cookie")
        for c in cookies:
            response.headers.add("Set-Cookie", re.sub(r";\s*HttpOnly", "", c))
    if mutation == "no-unset-refresh":
        cookies = response.headers.getlist("Set-Cookie")
        response.headers.remove("Set-Cookie")
        for c in cookies:
            if not c.startswith(("refresh_token_cookie=;", "csrf_refresh_token=;")):
                response.headers.add("Set-Cookie", c)
    return response


run_simple(host, int(port), app, threaded=True)
