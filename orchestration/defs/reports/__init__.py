"""Dashboard and scheduled reports."""
