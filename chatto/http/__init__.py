"""HTTP transport: one ASGI app served by Hypercorn on Trio."""
