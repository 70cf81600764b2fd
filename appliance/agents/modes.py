"""Plan mode and print mode, as each agent is told (pure).

Plan mode: the agent plans before it edits. Claude Code and Gemini CLI have a permission
mode for it (``plan``: read-only until a person accepts the plan); Codex, and a custom
agent without ``plan_args``, get :func:`plan_first`, a prompt that asks for the plan first.

Print mode: the agent answers once and exits; the start script (:mod:`.boot`) records the
answer, marks it done in the agent's home and sends the ``Completed`` hook, after which the
session ends as ``completed``.

Every agent's start script carries its conversation on when the container was made again:
:func:`resume_or_start` is that choice, in shell.
"""

from __future__ import annotations

PLAN_FIRST = (
    "Plan first. Before you change any file, read what you need and write a short, "
    "numbered plan of the changes you intend (use your plan tool if you have one). Then "
    "stop and wait until I say go ahead; make no edits before that.")

#: Where the start script marks a print-mode answer done (in the agent's home).
PRINT_DONE = "$HOME/.clauderon/print-done"
#: Where it keeps the printed answer (what a custom agent's transcript shows).
PRINT_OUTPUT = ".clauderon/print-output.log"


def resume_or_start(found: str, resume: str, *start: str) -> str:
    """Shell lines: ``resume`` when the test ``found`` finds a conversation (the container
    was made again), else the lines ``start``."""
    return (f"if {found}; then\n    {resume}\nelse\n"
            + "".join(f"    {line}\n" for line in start) + "fi\n")


def plan_first(prompt: str) -> str:
    """The prompt a plan-first agent gets (the person's own text after the instruction)."""
    if not prompt:
        return PLAN_FIRST
    return f"{PLAN_FIRST}\n\nThe task:\n{prompt}"
