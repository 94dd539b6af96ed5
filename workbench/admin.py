from __future__ import annotations

from django.contrib import admin

from workbench.models import (
    Corpus,
    Document,
    ImportRecord,
    Job,
    Judgment,
    Membership,
    Passage,
    Project,
    Query,
    QueryTag,
    SearchConfiguration,
    ServingRecord,
)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]
    fk_name = "project"
    exclude = ["added_by"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_by", "created_at"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]
    search_fields = ["name", "slug"]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["project", "user", "role", "created_at"]
    list_filter = ["role", "project"]


@admin.register(Corpus)
class CorpusAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "chunk_size", "chunk_overlap", "version", "created_at"]


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ["external_id", "corpus", "title", "tenant", "doc_type", "date"]
    search_fields = ["external_id", "title"]
    list_filter = ["corpus"]


@admin.register(Passage)
class PassageAdmin(admin.ModelAdmin):
    list_display = ["document", "ordinal", "token_count", "char_start", "char_end"]
    raw_id_fields = ["document"]


@admin.register(QueryTag)
class QueryTagAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "held_out"]


@admin.register(Query)
class QueryAdmin(admin.ModelAdmin):
    list_display = ["external_id", "project", "text"]
    search_fields = ["external_id", "text"]
    filter_horizontal = ["tags"]


@admin.register(ImportRecord)
class ImportRecordAdmin(admin.ModelAdmin):
    list_display = ["filename", "kind", "project", "rows", "created_by", "created_at"]


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "project", "status", "progress", "created_by", "created_at"]
    list_filter = ["status", "kind"]


@admin.register(Judgment)
class JudgmentAdmin(admin.ModelAdmin):
    list_display = ["query", "document", "grade", "source", "split", "annotator", "created_at"]
    list_filter = ["source", "split", "grade"]
    raw_id_fields = ["query", "document", "passage", "import_record"]


@admin.register(SearchConfiguration)
class SearchConfigurationAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "index", "mode", "alpha", "reranker", "rerank_top_n", "created_at"]
    list_filter = ["project", "mode"]
    search_fields = ["name"]


@admin.register(ServingRecord)
class ServingRecordAdmin(admin.ModelAdmin):
    list_display = ["project", "configuration", "source", "set_by", "set_at"]
