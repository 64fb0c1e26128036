"""Modules shared by several built-in families. ``Zero``, the ``none`` primitive, lives in the core
(:mod:`darts.search_space.zero`), where the mixed op recognises it; it is importable from here as before."""

from __future__ import annotations

from darts.search_space.zero import Zero

__all__ = ["Zero"]
