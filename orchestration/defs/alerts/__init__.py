"""Alerts: rule evaluation and delivery of webhook, Slack, PagerDuty and email events."""
