"""``clauderon``: the command people type. Thin: argv -> API call -> text or JSON.

Every error ends here as one line on stderr (``clauderon: <message>``) and the exit code
of its class (:mod:`appliance.errors`); nothing else prints tracebacks.
"""

from __future__ import annotations

import sys

from appliance.errors import ClauderonError
from cli.commands import build_parser, dispatch


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return dispatch(args)
    except ClauderonError as exc:
        print(f"clauderon: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("clauderon: interrupted", file=sys.stderr)
        return 130


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
