"""Writes of the core app, one module per sub-area. Views and tasks call these; they never write themselves."""
