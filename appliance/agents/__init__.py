"""What runs inside a session's container for its agent (Claude Code or Codex).

Pure builders, no I/O: :mod:`~appliance.agents.hooks` (the status hook script and Claude's
managed settings), :mod:`~appliance.agents.claude` and :mod:`~appliance.agents.codex`
(onboarding state, config, the start script that resumes a conversation after the container
is recreated), :mod:`~appliance.agents.boot` (the whole boot plan: the tool check, the files
to write, the tmux command), :mod:`~appliance.agents.transcript` (the agents' logs parsed
into typed messages). :mod:`~appliance.agents.runner` is the thin trio shell that carries a
boot plan out through a backend's ``exec``.
"""
