"""``python -m pydsbase studies up|down|build``: the launcher's commands (see ``pydsbase.studies``)."""

from __future__ import annotations

from pydsbase.studies import register_cli as register

__all__ = ["register"]
