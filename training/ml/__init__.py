"""Django-free training code: datasets from label snapshots (plain data), negative mining, trainers, model cards.

It imports nothing from Django or the apps; the training app's tasks load rows, call these functions and report
progress. A data scientist can call them from a notebook with a ``SnapshotData`` built by hand.
"""
