"""Cryptography: AEAD sealing, canonical AAD, PII field sealing."""
