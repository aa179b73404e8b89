"""The metrics service: KPI definitions, polling schedules, collected samples, rollups up the
organisation, targets, alerts and reports.
"""
