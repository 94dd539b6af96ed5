"""Labeling routes, under the project prefix like the core app's."""

from __future__ import annotations

from django.urls import path

from labeling import views

app_name = "labeling"
L = "p/<slug:slug>/labeling/"
C = L + "campaigns/<int:pk>/"

urlpatterns = [
    path(L + "campaigns/", views.campaign_list, name="campaigns"),
    path(L + "campaigns/new/", views.campaign_new, name="campaign_new"),
    path(C, views.campaign_detail, name="campaign"),
    path(C + "pool/", views.campaign_pool, name="campaign_pool"),
    path(C + "guidelines/", views.campaign_guidelines, name="campaign_guidelines"),
    path(C + "aggregate/", views.campaign_aggregate, name="campaign_aggregate"),
    path(C + "status/", views.campaign_status, name="campaign_status"),
    path(C + "autojudge/", views.campaign_autojudge, name="campaign_autojudge"),
    path(C + "reassign/", views.campaign_reassign, name="campaign_reassign"),
    path(C + "agreement/", views.campaign_agreement, name="agreement"),
    path(C + "judge/", views.judge, name="judge"),
    path(C + "judge/<int:assignment_pk>/", views.judge_submit, name="judge_submit"),
    path(C + "judge/query/<int:query_pk>/", views.judge_query, name="judge_query"),
    path(C + "judge/<int:assignment_pk>/undo/", views.judge_undo, name="judge_undo"),
    path(C + "mine/", views.my_judgments, name="my_judgments"),
    path(C + "adjudicate/", views.adjudicate_queue, name="adjudicate"),
    path(C + "adjudicate/<int:item_pk>/", views.adjudicate_item, name="adjudicate_item"),
    path(L + "snapshots/", views.snapshot_list, name="snapshots"),
    path(L + "snapshots/new/", views.snapshot_new, name="snapshot_new"),
    path(L + "snapshots/<int:pk>/", views.snapshot_detail, name="snapshot"),
    path(L + "snapshots/<int:pk>/qrels/", views.snapshot_export, name="snapshot_export"),
    path(L + "mining/", views.mining_page, name="mining"),
    path(L + "mining/new/", views.mining_new, name="mining_new"),
    path(L + "audit/", views.audit, name="audit"),
    path(L + "audit/<int:item_pk>/", views.audit_submit, name="audit_submit"),
]
