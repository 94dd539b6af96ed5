"""A tqdm progress bar that import/export services can report into."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm import tqdm


@contextmanager
def progress_bar(desc: str) -> Iterator[Callable[[float, str], None]]:
    with tqdm(total=1000, desc=desc, unit="‰", bar_format="{l_bar}{bar}| {elapsed} {postfix}") as bar:

        def report(fraction: float, message: str) -> None:
            bar.n = int(1000 * max(0.0, min(1.0, fraction)))
            bar.set_postfix_str(message)
            bar.refresh()

        yield report
        bar.n = 1000
        bar.refresh()
