"""Evaluation routes, under the project prefix like the core app's."""

from __future__ import annotations

from django.urls import path

from evaluation import views
from evaluation.answers import views as answer_views

app_name = "evaluation"
E = "p/<slug:slug>/evaluations/"
A = "p/<slug:slug>/answers/"

urlpatterns = [
    path(E, views.eval_list, name="list"),
    path(E + "new/", views.eval_new, name="new"),
    path(E + "compare/", views.eval_compare, name="compare"),
    path(E + "against-served/", views.eval_against_served, name="against_served"),
    path(E + "<int:pk>/", views.eval_detail, name="detail"),
    path(E + "<int:pk>/queries/<int:query_pk>/", views.eval_query, name="query"),
    path(E + "<int:pk>/report.json", views.report_json, name="report_json"),
    path(E + "<int:pk>/report.csv", views.report_csv, name="report_csv"),
    path(E + "<int:pk>/unjudged.csv", views.unjudged_csv, name="unjudged_csv"),
    path(E + "<int:pk>/configs/<int:config_pk>/run.trec", views.run_file, name="run_file"),
    path(A, answer_views.answers_list, name="answers_list"),
    path(A + "new/", answer_views.answers_new, name="answers_new"),
    path(A + "compare/", answer_views.answers_compare, name="answers_compare"),
    path(A + "flags/", answer_views.answers_flags, name="answers_flags"),
    path(A + "<int:pk>/", answer_views.answers_detail, name="answers_detail"),
    path(A + "<int:pk>/review/", answer_views.answers_review, name="answers_review"),
    path(A + "<int:pk>/flag/", answer_views.answers_flag, name="answers_flag"),
    path(A + "<int:pk>/judge/", answer_views.answers_judge, name="answers_judge"),
    path(A + "<int:pk>/a/<int:answer_pk>/", answer_views.answers_answer, name="answers_answer"),
]
