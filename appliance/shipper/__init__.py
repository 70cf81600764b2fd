"""The audit shipper: ``audit.jsonl`` to a local archive and an optional HTTP sink.

Theory of operation. The proxy appends one line per request to ``CLAUDERON_HOME/audit.jsonl``
(the line format lives in :mod:`appliance.audit`, nowhere else). The shipper follows that
file by *identity* (device + inode), not by name, so a rename never loses its place. It
reads a bounded chunk, cuts it into whole lines (:mod:`.lines`), hands the batch to every
sink (:mod:`.archive`, :mod:`.httpsink`), and only when all of them acknowledged does it write
the new byte offset to ``shipper/checkpoint.json`` (:mod:`.checkpoint`, atomic rename).
A sink that fails is retried with back-off (:mod:`.retry`); the offset does not move, so a
crash or a SIGTERM at any instant loses nothing.

Delivery is at-least-once: a crash after a sink acknowledged but before the checkpoint was
written sends that batch again on restart. The archive removes that duplicate itself (the
checkpoint records its size, and recovery truncates anything past it), so the archive holds
each line exactly once; an HTTP receiver de-duplicates by the record's ``id``.

Rotation (:mod:`.rotation`, decisions in :mod:`.follow`): when the live file reaches
``rotate_bytes`` the shipper renames it to ``audit.jsonl.<UTC stamp>`` and asks the writer to
reopen (:mod:`.reopen`: SIGHUP through supervisord). The proxy keeps appending to the renamed
file until it reopens; the shipper keeps reading it until a new ``audit.jsonl`` exists and
the old one is read to its end, then moves on, gzips it and keeps the newest
``keep_rotated``. The archive's daily files older than ``keep_days`` are removed at start
and at each new day (:func:`.archive.expired`, by the day in their names). The loop
itself is :mod:`.ship_loop`; :mod:`.__main__` wires it to supervisord.
"""
