from __future__ import annotations

from django.urls import path

from releases import views

app_name = "releases"
P = "p/<slug:slug>/releases/"

urlpatterns = [
    path(P, views.release_list, name="list"),
    path(P + "new/", views.release_new, name="new"),
    path(P + "policy/", views.gate_policy, name="policy"),
    path(P + "audit/", views.audit_log, name="audit"),
    path(P + "rollback/", views.release_rollback, name="rollback"),
    path(P + "<int:number>/", views.release_detail, name="detail"),
    path(P + "<int:number>/approve/", views.release_approve, name="approve"),
    path(P + "<int:number>/reject/", views.release_reject, name="reject"),
    path(P + "<int:number>/activate/", views.release_activate, name="activate"),
    path(P + "<int:number>/traffic/", views.release_traffic, name="traffic"),
    path(P + "<int:number>/gates/", views.release_gates, name="gates"),
    path(P + "<int:number>/auto-rollback/", views.release_auto_rollback, name="auto_rollback"),
]
