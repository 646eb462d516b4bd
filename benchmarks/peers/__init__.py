"""The servers a notebook user would use instead of ours, each run from its own virtualenv."""
