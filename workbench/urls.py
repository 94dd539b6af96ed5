"""Root URLs. The core app's own routes are ``app_patterns`` (namespace "workbench"); other apps mount theirs under
the project prefix."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from workbench import search_views, views
from workbench.api import api

P = "p/<slug:slug>/"

app_patterns = [
    path("", views.home, name="home"),
    path(P, views.project_detail, name="project"),
    path(P + "members/", views.members, name="members"),
    path(P + "members/<int:pk>/remove/", views.member_remove, name="member_remove"),
    path(P + "grade-scale/", views.grade_scale, name="grade_scale"),
    path(P + "corpora/new/", views.corpus_create, name="corpus_new"),
    path(P + "corpora/<int:pk>/", views.corpus_detail, name="corpus"),
    path(P + "corpora/<int:pk>/upload/", views.corpus_upload, name="corpus_upload"),
    path(P + "corpora/<int:pk>/delete/", views.corpus_delete, name="corpus_delete"),
    path(P + "documents/<int:pk>/", views.document_detail, name="document"),
    path(P + "queries/", views.queries, name="queries"),
    path(P + "queries/<int:pk>/", views.query_detail, name="query_detail"),
    path(P + "queries/import/", views.queries_import, name="queries_import"),
    path(P + "judgments/import/", views.qrels_import, name="qrels_import"),
    path(P + "export/", views.export, name="export"),
    path(P + "jobs/", views.jobs, name="jobs"),
    path(P + "jobs/<int:pk>/", views.job_detail, name="job"),
    path(P + "jobs/<int:pk>/cancel/", views.job_control, {"action": "cancel"}, name="job_cancel"),
    path(P + "jobs/<int:pk>/retry/", views.job_control, {"action": "retry"}, name="job_retry"),
    path(P + "models/", search_views.models_page, name="models"),
    path(P + "models/<int:pk>/", search_views.model_detail, name="model"),
    path(P + "models/<int:pk>/measure/", search_views.model_measure, name="model_measure"),
    path(P + "indexes/", search_views.indexes_page, name="indexes"),
    path(P + "indexes/<int:pk>/", search_views.index_detail, name="index"),
    path(P + "indexes/<int:pk>/delete/", search_views.index_delete, name="index_delete"),
    path(P + "search/", search_views.search_page, name="search"),
    path(P + "configurations/", search_views.configurations_page, name="configurations"),
    path(P + "configurations/<int:pk>/serve/", search_views.configuration_serve, name="configuration_serve"),
    path(P + "configurations/<int:pk>/delete/", search_views.configuration_delete, name="configuration_delete"),
    path(P + "latency/", search_views.latency_page, name="latency"),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/tokens/", search_views.tokens_page, name="tokens"),
    path("api/", api.urls),  # namespace "api"
    path("", include("evaluation.urls")),
    path("", include("releases.urls")),
    path("", include("labeling.urls")),
    path("", include("training.urls")),
    path("", include((app_patterns, "workbench"))),
]

# Styled error pages inside the site layout; 500 keeps Django's handler (it renders templates/500.html without
# touching the database, which may be what failed).
handler403 = "workbench.views.error_403"
handler404 = "workbench.views.error_404"
