"""The SMTP sink lives with the load test (which needs it outside the tests)."""

from chatto.loadtest.smtp_sink import SmtpSink

__all__ = ["SmtpSink"]
