"""Rooms, messages and live signals: the API-facing side of the chat domain."""
