"""The workbench project package and core app.

The Celery app is loaded by WorkbenchConfig.ready() (and by `celery -A workbench`, which finds workbench.celery), not
here: workbench.retrieval must stay importable without Django.
"""
