"""HTTPS with automatic certificates (ACME HTTP-01).

- ``cache``: the on-disk cache (account key, certificate bundles, 0600 files);
- ``acme_client``: one blocking ACME order with certbot's ``acme`` library,
  run in a worker thread;
- ``challenge``: the plain-HTTP listener's app (challenge answers, redirects);
- ``context``: the one ``ssl.SSLContext`` the HTTPS listener uses and the
  Hypercorn config that hands it over;
- ``manager``: ``CertManager``, the task that loads, obtains and renews the
  certificate and swaps it into the live context.
"""
