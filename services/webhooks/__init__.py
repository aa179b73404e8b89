"""The webhooks service: outbound subscriptions with signed, retried and replayable deliveries, and
verified inbound scheduler callbacks.
"""
