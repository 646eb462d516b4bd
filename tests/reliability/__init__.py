"""Reliability suite: concurrency, crashes, hostile input, two users, PostgreSQL (issue 7)."""
