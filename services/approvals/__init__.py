"""The approvals service: approval policies inherited down the district tree, approval requests,
decisions, delegation and the snapshot of what was approved.
"""
