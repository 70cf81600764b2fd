"""Start-time checks of the appliance container, before anything is created or changed.

The appliance image runs ``clauderon-preflight clauderon daemon``: :mod:`.probe` gathers the
facts (who we are, our capabilities, the engine's socket, how the engine says this container
was started), :mod:`.rules` judges them (pure), and :mod:`.__main__` prints every problem
with its fix and exits 78, or picks the host's iptables backend and ``exec``s the command.

Why these checks: sessions run as *siblings* on the host's engine, which resolves every path
the appliance hands it on the host, and their firewall lives in the host's network namespace
(DESIGN.md, "The appliance image"). A data folder or repositories mounted at another path, a
missing socket, or no CAP_NET_ADMIN would otherwise fail later, half-way, or silently.
"""
