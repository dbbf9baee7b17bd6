"""Errors meant for a person: ``ScenarioError`` (the command line prints it and exits with 2).

It lives in ``core`` so that every layer (the contract, controllers, domains, drivers) can raise
it without importing the scenario schema; ``gridmarl.config`` re-exports it for users.
"""

from __future__ import annotations


class ScenarioError(ValueError):
    """A scenario (or a checkpoint, run folder or option used with it) that cannot be used; the
    message is meant for a person and names the file, key, value and what is allowed."""
