"""The inventory service: every social account of the organisation, official or not: districts,
accounts, owners, status, takedowns, detection, import and export, and the audit trail.
"""
