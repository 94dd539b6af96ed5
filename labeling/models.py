"""The judging workflow: campaigns, assignments, verdicts, adjudications and label snapshots.

Raw relevance facts (``Judgment``) live in the core (``workbench.models``); this app writes them.
"""
