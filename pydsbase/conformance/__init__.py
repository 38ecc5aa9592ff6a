"""Conformance: replay validation cases against pydsbase (``runner``) and judge the outputs (``compare``)."""

from __future__ import annotations

__all__ = ["cli"]
