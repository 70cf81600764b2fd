"""What runs inside a session's container for its agent (Claude Code or Codex).

Pure builders, no I/O: :mod:`~appliance.agents.hooks` (the status hook script and Claude's
managed settings), :mod:`~appliance.agents.claude_setup` and :mod:`~appliance.agents.codex_setup`
(onboarding state, config, the start script that resumes a conversation after the container
is recreated), :mod:`~appliance.agents.boot` (the whole boot plan: the tool check, the files
to write, the tmux command), :mod:`~appliance.agents.logs` (the agents' logs parsed
into typed messages). :mod:`~appliance.agents.runner` is the thin trio shell that carries a
boot plan out through a backend's ``exec``.
"""
