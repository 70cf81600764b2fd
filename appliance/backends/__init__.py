"""Compute backends behind one protocol (:mod:`appliance.backends.base`)."""
