"""Dashboard pages and scheduled reports (PDF, CSV, email), drawn from the metrics layer."""
