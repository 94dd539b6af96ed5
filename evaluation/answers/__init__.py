"""Answer runs and their human QA: services (writes), selectors (reads), views, forms, task."""
