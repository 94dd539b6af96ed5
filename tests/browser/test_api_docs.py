from __future__ import annotations

import pytest

from tests.browser.conftest import login
from tests.factories import PASSWORD, make_project
from workbench.models import Role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_api_docs_render_from_vendored_assets(page, live_server) -> None:  # type: ignore[no-untyped-def]
    make_project(ann=Role.ANNOTATOR)
    hosts: set[str] = set()
    page.on("request", lambda request: hosts.add(request.url.split("/")[2]))
    login(page, live_server, "ann", PASSWORD)
    page.goto(f"{live_server.url}/api/docs")
    page.wait_for_selector(".opblock")
    assert page.locator(".opblock").count() == 6  # search GET + POST, indexes, models, jobs, job
    assert hosts == {live_server.url.split("/")[2]}  # nothing from a CDN
