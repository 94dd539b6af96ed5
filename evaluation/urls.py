"""Evaluation routes, under the project prefix like the core app's."""

from __future__ import annotations

from django.urls import path

from evaluation import views

app_name = "evaluation"
E = "p/<slug:slug>/evaluations/"

urlpatterns = [
    path(E, views.eval_list, name="list"),
    path(E + "new/", views.eval_new, name="new"),
    path(E + "compare/", views.eval_compare, name="compare"),
    path(E + "<int:pk>/", views.eval_detail, name="detail"),
    path(E + "<int:pk>/queries/<int:query_pk>/", views.eval_query, name="query"),
    path(E + "<int:pk>/report.json", views.report_json, name="report_json"),
    path(E + "<int:pk>/report.csv", views.report_csv, name="report_csv"),
    path(E + "<int:pk>/unjudged.csv", views.unjudged_csv, name="unjudged_csv"),
    path(E + "<int:pk>/configs/<int:config_pk>/run.trec", views.run_file, name="run_file"),
]
