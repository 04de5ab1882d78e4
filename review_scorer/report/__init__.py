"""The HTML reports: insights, provenance and plots as plain data, rendered with templates/."""
