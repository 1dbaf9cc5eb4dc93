"""``chatto loadtest``: virtual users over real HTTP and WebSockets (see driver.py)."""
