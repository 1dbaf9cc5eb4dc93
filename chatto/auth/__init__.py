"""Authentication: passwords, tokens, cookies, codes, registration and login."""
