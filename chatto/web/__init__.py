"""The web client served by Chatto itself (``static/``) and the routes that serve it."""
