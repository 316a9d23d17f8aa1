"""What an apply leaves behind: the JSON report, JUnit, metrics, pings, outcome."""
