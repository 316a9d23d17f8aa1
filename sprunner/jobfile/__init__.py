"""From job-file paths to desired collections. No network: nothing here imports `api/`."""
