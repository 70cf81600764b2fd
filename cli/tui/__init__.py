"""The terminal UI (``clauderon tui``): a Textual app, one more client of the API.

It talks to the API over the Unix socket only (REST through async httpx, live events
through ``/ws/events``), like the CLI beside it. Start at :mod:`cli.tui.tui_app`.
"""
