"""Set-up steps and sanity checks for deploy/bench/identity (Python standard library only).

    python bench-identity-prep.py basic-auth
        prints the Authorization header value for the stack's service client: HTTP Basic with
        $SERVICE_CLIENT_ID / $SERVICE_CLIENT_SECRET form-urlencoded first (RFC 6749 2.3.1)
    python bench-identity-prep.py token-check --identity URL
        one client_credentials request: must be 200 with an access_token; prints "ok"
    python bench-identity-prep.py login-user --identity URL
        logs in as $ADMIN_USER / $ADMIN_PASSWORD, creates a dedicated technologist account with a
        random password (POST /users), checks that it can log in with its full scopes, and prints
        the JSON body of its login request ({"username","password"}) for the wrk script
    python bench-identity-prep.py ledger-check --identity URL --ledger URL --scope S
                                                --expect-token N --expect-no-token M
        gets a client_credentials token with scope S, then checks the ledger's answers that the
        verification phases rely on: POST /entries {"entries":[]} with that token must answer N
        (the bearer middleware verified it, the handler refused the empty batch: no database
        write), without a token M, and GET /health/live 200; prints the token

Secrets come from the environment and go to stdout only (the caller keeps them in variables, not
in argv). Every request has a timeout and is never retried; every target must be 127.0.0.1.
Exit status 1 with a message on stderr when a check fails.
"""

import argparse
import base64
import json
import os
import sys
import urllib.parse

from benchlib import Failed, call, create_account, describe, local_url, login, login_token



def die(msg):
    print(f"bench-identity-prep: {msg}", file=sys.stderr)
    sys.exit(1)


def env(name):
    value = os.environ.get(name)
    if not value:
        die(f"${name} is not set (it comes from the stack's stack.env)")
    return value


def basic_auth():
    raw = f"{urllib.parse.quote_plus(env('SERVICE_CLIENT_ID'))}:{urllib.parse.quote_plus(env('SERVICE_CLIENT_SECRET'))}"
    return "Basic " + base64.b64encode(raw.encode()).decode("ascii")


def claims(token):
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError) as e:
        die(f"the access token is not a JWT: {e}")


def client_token(identity, scope=None):
    form = {"grant_type": "client_credentials"}
    if scope:
        form["scope"] = scope
    url = identity + "/auth/token"
    status, _, body = call("POST", url, urllib.parse.urlencode(form).encode(), {
        "Authorization": basic_auth(), "Content-Type": "application/x-www-form-urlencoded"})
    if status != 200:
        die("client_credentials failed: " + describe("POST", url, status, body))
    try:
        token = json.loads(body)["access_token"]
    except (ValueError, KeyError, TypeError):
        die("no access_token: " + describe("POST", url, status, body))
    if scope and scope not in claims(token).get("scope", "").split():
        die(f"the token's scope {claims(token).get('scope')!r} lacks {scope}")
    return token


def cmd_token_check(args):
    client_token(local_url(args.identity))
    print("ok")


def cmd_login_user(args):
    identity = local_url(args.identity)
    admin = login(identity, env("ADMIN_USER"), env("ADMIN_PASSWORD"))["access_token"]
    username, password = create_account(identity, admin, "technologist")
    try:
        login_token(identity, username, password)
    except Failed as e:
        die(f"the benchmark user's logins would not be ordinary ones: {e}")
    print(json.dumps({"username": username, "password": password}, separators=(",", ":")))


def cmd_ledger_check(args):
    identity, ledger = local_url(args.identity), local_url(args.ledger)
    token = client_token(identity, args.scope)
    url = ledger + "/entries"
    body = b'{"entries":[]}'
    json_type = {"Content-Type": "application/json"}
    status, _, answer = call("POST", url, body, {**json_type, "Authorization": "Bearer " + token})
    if status != args.expect_token:
        hint = " (does the ledger verify identity's tokens? check its JWKS_URL)" if status == 401 else ""
        die(f"with a valid token expected {args.expect_token}{hint}: " + describe("POST", url, status, answer))
    status, _, answer = call("POST", url, body, json_type)
    if status != args.expect_no_token:
        die(f"without a token expected {args.expect_no_token}: " + describe("POST", url, status, answer))
    status, _, answer = call("GET", ledger + "/health/live")
    if status != 200:
        die("expected 200: " + describe("GET", ledger + "/health/live", status, answer))
    print(token)


def main():
    ap = argparse.ArgumentParser(description="set-up steps for deploy/bench/identity")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("basic-auth")
    p = sub.add_parser("token-check")
    p.add_argument("--identity", required=True)
    p = sub.add_parser("login-user")
    p.add_argument("--identity", required=True)
    p = sub.add_parser("ledger-check")
    p.add_argument("--identity", required=True)
    p.add_argument("--ledger", required=True)
    p.add_argument("--scope", default="medledger/ledger.append")
    p.add_argument("--expect-token", type=int, required=True)
    p.add_argument("--expect-no-token", type=int, required=True)
    args = ap.parse_args()
    if args.cmd == "basic-auth":
        print(basic_auth())
    elif args.cmd == "token-check":
        cmd_token_check(args)
    elif args.cmd == "login-user":
        cmd_login_user(args)
    else:
        cmd_ledger_check(args)


if __name__ == "__main__":
    try:
        main()
    except Failed as e:
        die(str(e))
