"""Agent analytics: settings, command line, exports."""
