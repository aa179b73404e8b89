"""A Hootsuite-like scheduler as a real HTTP server, for tests and the embedded run.

It receives Chorus's signed ``post.scheduled`` deliveries (Standard Webhooks), turns each target
into a scheduled message, publishes it at its time (or at once in fast mode), and calls back,
signed, with ``message.sent``, ``message.failed`` and ``analytics.updated``. It speaks the wire
formats only: it imports nothing of Chorus, as a real scheduler would not. State lives in memory
and a restart loses it. See README.md for the exact callback format.
"""
