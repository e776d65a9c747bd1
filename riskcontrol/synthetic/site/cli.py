"""``riskctl site build|serve``: the generated public-web site from the command line.

``add_site_parser(subparsers)`` registers the ``site`` command on riskctl's argparse
subparsers; ``site_command(args)`` runs it and returns the exit code.
"""

from __future__ import annotations

import argparse
import sys

from riskcontrol.core.config import get_settings
from riskcontrol.synthetic.site.server import build_and_write, describe, serve_forever

SITE_EPILOG = """\
examples:
  riskctl site build                     write data/site/ground_truth.jsonl and site.json
  riskctl site serve                     serve http://127.0.0.1:8765 (epoch 1, faults on)
  riskctl site serve --epoch 2           the site one update later (new and changed pages)
  riskctl site serve --no-faults --port 9000

the lending book must exist first: run `riskctl generate`.
settings: RISK_SITE_HOST, RISK_SITE_PORT, RISK_DATA_DIR (site files go to DATA_DIR/site).
"""


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--seed", type=int, default=None, help="site seed (default: the lending book's seed)"
    )
    p.add_argument(
        "--epochs", type=int, default=3, help="site updates to generate, 1..N (default 3)"
    )


def add_site_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``site`` with its ``build`` and ``serve`` actions."""
    help_text = "the generated public-web site (court lists, penalties, news) for the crawlers"
    site = subparsers.add_parser(
        "site",
        help=help_text,
        description=help_text + ", derived from the generated lending book.",
        epilog=SITE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = site.add_subparsers(dest="site_action", required=True, metavar="ACTION")
    build = actions.add_parser(
        "build",
        help="write the ground truth (ground_truth.jsonl) and summary (site.json)",
        description="Build the site's content from the lending book and write "
        "ground_truth.jsonl and site.json to RISK_DATA_DIR/site.",
    )
    _common(build)
    serve = actions.add_parser(
        "serve",
        help="serve the site on loopback until Ctrl-C",
        description="Build the site, write its ground truth and serve it until Ctrl-C.",
    )
    _common(serve)
    serve.add_argument("--epoch", type=int, default=1, help="site update to serve (default 1)")
    serve.add_argument(
        "--no-faults",
        dest="faults",
        action="store_false",
        help="no 500/429/slow/broken/unparseable/oversized pages",
    )
    serve.add_argument("--host", default=None, help="bind address (default RISK_SITE_HOST)")
    serve.add_argument("--port", type=int, default=None, help="port (default RISK_SITE_PORT)")
    serve.add_argument("--verbose", action="store_true", help="log every request to stderr")
    # riskctl dispatches on ``fn``; ``func`` is the argparse convention other callers use.
    site.set_defaults(fn=site_command, func=site_command)
    return site


def site_command(args: argparse.Namespace) -> int:
    """Run ``site build`` or ``site serve``; 2 with a readable message on a missing book."""

    settings = get_settings()
    try:
        if args.site_action == "build":
            content = build_and_write(settings, args.seed, args.epochs)
            for epoch in range(1, content.epochs + 1):
                print(describe(content, epoch))
            print(f"wrote {settings.site_dir / 'ground_truth.jsonl'} and site.json")
            return 0
        updates = {
            k: v for k, v in (("site_host", args.host), ("site_port", args.port)) if v is not None
        }
        serve_forever(
            settings.model_copy(update=updates),
            epoch=args.epoch,
            faults=args.faults,
            seed=args.seed,
            epochs=args.epochs,
            verbose=args.verbose,
        )
        return 0
    except (FileNotFoundError, ValueError, OSError) as exc:
        print(f"riskctl site {args.site_action}: error: {exc}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point: ``python -m riskcontrol.synthetic.site serve``."""
    parser = argparse.ArgumentParser(prog="riskctl")
    add_site_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["site", *(sys.argv[1:] if argv is None else argv)])
    return args.fn(args)
