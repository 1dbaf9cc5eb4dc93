"""Mentions, notifications and followed threads (issue #19): the per-user
``notify`` entity, its actor, and the read model derived from room events."""
