"""Training routes, under the project prefix like the core app's."""

from __future__ import annotations

from django.urls import path

from training import views

app_name = "training"
T = "p/<slug:slug>/training/"

urlpatterns = [
    path(T, views.run_list, name="list"),
    path(T + "new/", views.run_new, name="new"),
    path(T + "<int:pk>/", views.run_detail, name="run"),
    path(T + "<int:pk>/status/", views.run_status, name="run_status"),
    path(T + "<int:pk>/index/", views.run_build_index, name="run_index"),
    path(T + "<int:pk>/configure/", views.run_configure, name="run_configure"),
]
