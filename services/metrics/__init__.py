"""The metrics service: kPI definitions, polling schedules, collected samples, rollups up the
organisation, targets, alerts and reports.
"""
