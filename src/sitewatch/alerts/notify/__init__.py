"""Notifiers: one module per channel type behind one small interface (``base.Notifier``)."""

from __future__ import annotations

from .base import ChannelSpec, Notifier, Outcome, notifier_for

__all__ = ["ChannelSpec", "Notifier", "Outcome", "notifier_for"]
