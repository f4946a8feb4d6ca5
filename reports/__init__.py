"""Reports: the daily report, its commands and its admin pages."""
