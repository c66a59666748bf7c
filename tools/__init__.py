"""Developer tools: a real browser against a real server, for tests and documentation."""
