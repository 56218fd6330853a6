"""Export assets: the daily CSV and the full JSON at stable paths under exports/."""
