"""``clauderon``: the command people type. Thin: argv -> API call -> text or JSON.

Every error ends here as one line on stderr (``clauderon: <message>``) and the exit code
of its class (:mod:`appliance.errors`); nothing else prints tracebacks. Output piped into a
reader that stops early (``clauderon list | head``) ends quietly with 141, the status a
shell gives a command that SIGPIPE ended.
"""

from __future__ import annotations

import os
import sys

from appliance.errors import ClauderonError
from cli.commands import build_parser
from cli.table import inert


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
        sys.stdout.flush()  # here, where a reader gone is caught, not at the exit
        return code
    except ClauderonError as exc:
        print(f"clauderon: {inert(exc.message)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("clauderon: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _reader_gone()


#: 128 + SIGPIPE: what a shell reports for a command whose reader went away.
EXIT_BROKEN_PIPE = 141


def _reader_gone() -> int:
    """The reader of stdout has gone: point stdout at /dev/null, so the interpreter's final
    flush of what is still buffered has nowhere to fail (it would print a traceback)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_BROKEN_PIPE


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
