"""The calendar service: editorial calendars, campaigns, posts with per-platform variants, the
asset library, the style guide and its checks, blackout periods and iCalendar feeds.
"""
