"""Alerts and webhooks: rules from a TOML file, evaluated over the warehouse's minute and day
marts, events through an outbox in the warehouse, delivery to webhook, Slack, PagerDuty and
email channels. See docs/alerts.md."""
