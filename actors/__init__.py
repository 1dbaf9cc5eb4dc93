"""The domain: actors, their commands and events, read models and live fan-out.

Nothing in this package imports HTTP, GraphQL or NATS modules; storage is
reached through the protocols in ``actors.store``.
"""
