"""`riskctl users` and `riskctl workbench`.

Only argparse is imported here: `riskctl --help` loads no web framework or Spark.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

USERS_EPILOG = """\
examples:
  riskctl users add admin --role admin          # asks for the password twice
  printf '%s\\n' "$PW" | riskctl users add li.wei --role reviewer --password-stdin
  riskctl users list
  riskctl users reset li.wei                    # new password; unlocks and re-enables
  riskctl users reset li.wei --role approver --keep-password
  riskctl users disable li.wei                  # ends the user's sessions too

Roles, lowest first: viewer < analyst < reviewer < risk_manager < approver < admin; a
role can do everything the roles below it can. Passwords (12 characters or more) are
hashed with argon2id; five failed logins in a row lock a user for 15 minutes.
"""
WORKBENCH_EPILOG = """\
examples:
  riskctl users add admin --role admin          # the first user, then:
  riskctl workbench                             # http://127.0.0.1:8080/login
  riskctl workbench --host 0.0.0.0 --port 8443 --tls-cert server.pem --tls-key server.key

`riskctl serve` serves the same pages under /ui/, beside the decision API. Its session
cookie is Secure: browsers send it over HTTPS, and over plain HTTP to localhost only.
"""


# As riskcontrol.workbench.store.ROLES (a test keeps them equal), without importing it.
ROLE_CHOICES = ("viewer", "analyst", "reviewer", "risk_manager", "approver", "admin")


def _settings():
    from riskcontrol.cli.common import load_settings

    return load_settings()


def _store():
    from riskcontrol.workbench.store import WorkbenchStore, default_path

    return WorkbenchStore(default_path(_settings().home))


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in this environment (e.g. a container's uid)
        return f"cli:uid{os.getuid()}"


def audit_from_cli(action: str, target: str, detail: dict | None = None) -> None:
    """Record a change made from the command line in the workbench's audit log."""
    _store().audit(_actor(), action, target, detail)


def _password(args) -> str:
    if args.password_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise SystemExit("the two passwords differ; nothing changed")
    return first


def _run(fn) -> int:
    from riskcontrol.workbench.store import UserError

    try:
        fn()
    except UserError as exc:
        print(f"riskctl users: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_users_add(args) -> int:
    def go():
        store = _store()
        user = store.add_user(args.username, args.role, _password(args), _actor())
        print(f"user {user.username} added with role {user.role}")

    return _run(go)


def cmd_users_list(args) -> int:
    users = _store().users()
    if not users:
        print("no users: create the first admin with `riskctl users add NAME --role admin`")
        return 0
    print(f"{'user':<24} {'role':<13} {'state':<24} created")
    for u in users:
        state = (
            "disabled"
            if u.disabled
            else (f"locked until {u.locked_until:%H:%M}" if u.locked_until else "active")
        )
        print(f"{u.username:<24} {u.role:<13} {state:<24} {u.created_at[:19]}")
    return 0


def cmd_users_disable(args) -> int:
    def go():
        _store().disable(args.username, _actor())
        print(f"user {args.username} disabled; their sessions ended")

    return _run(go)


def cmd_users_reset(args) -> int:
    def go():
        password = None if args.keep_password else _password(args)
        _store().reset(args.username, _actor(), password=password, role=args.role)
        print(f"user {args.username} reset: enabled, unlocked, sessions ended")

    return _run(go)


def cmd_workbench(args) -> int:
    import threading

    import uvicorn

    from riskcontrol.serve.runtime import is_loopback, tls_options
    from riskcontrol.workbench.app import build

    settings = _settings()
    try:
        tls = tls_options(args.tls_cert, args.tls_key, None)
    except ValueError as exc:
        print(f"riskctl workbench: {exc}", file=sys.stderr)
        return 2
    if not tls and not is_loopback(args.host):
        print(
            f"riskctl workbench: plain HTTP is served on loopback only; to listen on "
            f"{args.host}, give --tls-cert and --tls-key",
            file=sys.stderr,
        )
        return 2
    from riskcontrol.serve.rules import ensure_rules, rules_path

    if ensure_rules(rules_path(settings)):
        print(f"no rules file yet: wrote the example rules to {rules_path(settings)}")
    app = build(settings)
    if not _store().users():
        print("no users yet: create the first admin with `riskctl users add NAME --role admin`")
    # Spark starts in the background: the first page that needs the lakehouse waits for it.
    threading.Thread(target=_warm, args=(app,), daemon=True).start()
    scheme = "https" if tls else "http"
    print(f"workbench on {scheme}://{args.host}:{args.port}/login", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", **tls)
    return 0


def _warm(app) -> None:
    try:
        app.state.lake.spark  # noqa: B018 - starting Spark is the point
    except Exception as exc:  # the pages that need it say so
        print(f"Spark did not start: {exc}", file=sys.stderr)


def register(sub) -> None:
    """Add users and workbench to riskctl's subcommands."""
    from riskcontrol.cli.common import subparser as parser

    users = parser(sub, "users", None, "the workbench's users and roles", USERS_EPILOG)
    usub = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")

    def user_args(p, role_required: bool) -> None:
        p.add_argument("username")
        p.add_argument(
            "--role",
            required=role_required,
            default=None,
            choices=ROLE_CHOICES,
            help="viewer < analyst < reviewer < risk_manager < approver < admin",
        )
        p.add_argument("--password-stdin", action="store_true", help="read the password's line")

    user_args(parser(usub, "add", cmd_users_add, "add a user with a role"), role_required=True)
    parser(usub, "list", cmd_users_list, "every user: role, state, created")
    p = parser(usub, "disable", cmd_users_disable, "disable a user (sessions end at once)")
    p.add_argument("username")
    p = parser(usub, "reset", cmd_users_reset, "new password and/or role; unlock; re-enable")
    user_args(p, role_required=False)
    p.add_argument("--keep-password", action="store_true", help="change the role only")

    p = parser(
        sub, "workbench", cmd_workbench, "serve the risk team's web workbench", WORKBENCH_EPILOG
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (8080)")
    p.add_argument("--tls-cert", type=Path, default=None, help="server certificate (PEM)")
    p.add_argument("--tls-key", type=Path, default=None, help="its private key (PEM)")
