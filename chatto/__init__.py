"""Chatto: a self-hosted chat server with privacy by construction."""

__version__ = "0.1.0"
