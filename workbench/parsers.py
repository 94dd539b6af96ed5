"""Parsers for corpus, query and qrels files. Plain Python: they read a file and return records, or raise
ImportFileError naming the file and line. Nothing here writes anywhere, which is what keeps imports atomic.

Documents may have an empty text (real corpora have title-only and empty records); qrels grades are read as whole
numbers of any value: the import services check them against the project's grade scale and apply a grade map.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from workbench.errors import PermanentJobError

CORPUS_SUFFIXES = {".jsonl", ".txt", ".md", ".markdown", ".html", ".htm"}
QUERY_SUFFIXES = {".jsonl", ".csv", ".tsv", ".txt"}
QRELS_SUFFIXES = {".tsv", ".txt", ".qrels", ""}


class ImportFileError(PermanentJobError, ValueError):
    """A problem in an input file, with the file name and (where known) the 1-based line number.

    Permanent: running the same import again reads the same bytes and fails the same way.
    """

    def __init__(self, filename: str, message: str, line: int | None = None) -> None:
        self.filename, self.line, self.detail = filename, line, message
        where = f"{filename}, line {line}" if line else filename
        super().__init__(f"{where}: {message}")


@dataclass
class DocRecord:
    external_id: str
    title: str
    text: str
    metadata: dict = field(default_factory=dict)
    source_name: str = ""
    line: int | None = None


@dataclass
class QueryRecord:
    external_id: str
    text: str
    metadata: dict = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    line: int | None = None


@dataclass
class QrelRecord:
    query_id: str
    doc_id: str
    grade: int
    line: int


def _lines(path: Path, name: str) -> Iterator[tuple[int, str]]:
    """Decoded lines with 1-based numbers; an encoding error names its line instead of failing somewhere later."""
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ImportFileError(
                    name, f"is not valid UTF-8 (byte {exc.start} of the line); save the file as UTF-8", number
                ) from None


def _read_text(path: Path, name: str) -> str:
    text = "".join(line for _, line in _lines(path, name))
    if not text.strip():
        raise ImportFileError(name, "the file is empty")
    return text


def _json_lines(path: Path, name: str) -> Iterator[tuple[int, dict]]:
    seen_any = False
    for number, line in _lines(path, name):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ImportFileError(name, f"malformed JSON ({exc.msg} at column {exc.colno})", number) from None
        if not isinstance(obj, dict):
            raise ImportFileError(name, "each line must be a JSON object", number)
        seen_any = True
        yield number, obj
    if not seen_any:
        raise ImportFileError(name, "the file is empty")


def _check_unique(records: list, name: str, kind: str) -> None:
    first_line: dict[str, int | None] = {}
    for rec in records:
        if rec.external_id in first_line:
            raise ImportFileError(
                name,
                f"duplicate {kind} id {rec.external_id!r} (first seen on line {first_line[rec.external_id]})",
                rec.line,
            )
        first_line[rec.external_id] = rec.line


def _id_of(obj: dict, keys: tuple[str, ...]) -> str | None:
    for key in keys:
        if key in obj and obj[key] is not None and str(obj[key]).strip():
            return str(obj[key]).strip()
    return None


# --- corpus --------------------------------------------------------------------------------------------------------


def parse_corpus_jsonl(path: Path, name: str, *, text_field: str = "text") -> list[DocRecord]:
    """BEIR corpus.jsonl ({"_id", "title", "text", "metadata"}) or plain JSONL with a text field (other keys become
    metadata; the id comes from _id/id/doc_id, else file name and line)."""
    records = []
    for number, obj in _json_lines(path, name):
        text = obj.get(text_field)
        if not isinstance(text, str):
            raise ImportFileError(name, f'missing the text field "{text_field}" (or it is not a string)', number)
        # An empty text is allowed: the import indexes such a document by its title, or keeps it without a passage.
        doc_id = _id_of(obj, ("_id", "id", "doc_id")) or f"{Path(name).stem}:{number}"
        title = obj.get("title") or ""
        if not isinstance(title, str):
            raise ImportFileError(name, '"title" must be a string', number)
        meta = obj.get("metadata")
        if meta is None:
            meta = {k: v for k, v in obj.items() if k not in {"_id", "id", "doc_id", "title", text_field}}
        elif not isinstance(meta, dict):
            raise ImportFileError(name, '"metadata" must be a JSON object', number)
        records.append(DocRecord(doc_id, title, text, meta, name, number))
    _check_unique(records, name, "document")
    return records


class _HTMLText(HTMLParser):
    """Visible text of an HTML page: script/style dropped, block elements become line breaks."""

    BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "pre", "td"}
    HIDDEN = {"script", "style", "template", "noscript", "head"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title_parts: list[str] = []
        self._hidden = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in self.HIDDEN:
            self._hidden += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in self.HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title_parts.append(data)
        elif not self._hidden:
            self.parts.append(data)


def html_to_text(html: str) -> tuple[str, str]:
    """(title, text) of an HTML document, markup stripped and whitespace tidied."""
    parser = _HTMLText()
    parser.feed(html)
    parser.close()
    lines = [re.sub(r"[ \t\r\f\v]+", " ", ln).strip() for ln in "".join(parser.parts).split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return " ".join("".join(parser.title_parts).split()), text


def parse_corpus_single(path: Path, name: str) -> list[DocRecord]:
    """One document per .txt/.md/.html file; its id is the file name."""
    suffix = Path(name).suffix.lower()
    raw = _read_text(path, name)
    title = ""
    if suffix in {".html", ".htm"}:
        title, text = html_to_text(raw)
    else:
        text = raw.strip()
        if suffix in {".md", ".markdown"}:
            heading = re.search(r"^#\s+(.+)$", text, re.MULTILINE)
            title = heading.group(1).strip() if heading else ""
    if not text and not title:
        raise ImportFileError(name, "no text left after removing markup")
    return [DocRecord(Path(name).name, title, text, {}, name, None)]


def parse_corpus_file(path: Path, name: str, *, text_field: str = "text") -> list[DocRecord]:
    suffix = Path(name).suffix.lower()
    if suffix not in CORPUS_SUFFIXES:
        raise ImportFileError(
            name, f"unsupported file type {suffix or '(none)'}; use {', '.join(sorted(CORPUS_SUFFIXES))}"
        )
    if suffix == ".jsonl":
        return parse_corpus_jsonl(path, name, text_field=text_field)
    return parse_corpus_single(path, name)


# --- queries -------------------------------------------------------------------------------------------------------


def _split_tags(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(t).strip() for t in value if str(t).strip()]
    if isinstance(value, str):
        return [t.strip() for t in re.split(r"[;|,]", value) if t.strip()]
    return []


def parse_queries_file(path: Path, name: str) -> list[QueryRecord]:
    """BEIR queries.jsonl (an optional top-level "tags" list), CSV with id,text[,tags] columns, or one query per line
    (``id<TAB>text`` or just the text, numbered by line)."""
    suffix = Path(name).suffix.lower()
    if suffix not in QUERY_SUFFIXES:
        raise ImportFileError(
            name, f"unsupported file type {suffix or '(none)'}; use {', '.join(sorted(QUERY_SUFFIXES))}"
        )
    records: list[QueryRecord] = []
    if suffix == ".jsonl":
        for number, obj in _json_lines(path, name):
            qid = _id_of(obj, ("_id", "id", "query_id"))
            text = obj.get("text")
            if qid is None:
                raise ImportFileError(name, 'missing the query id ("_id")', number)
            if not isinstance(text, str) or not text.strip():
                raise ImportFileError(name, 'missing or empty "text"', number)
            meta = obj.get("metadata") or {}
            if not isinstance(meta, dict):
                raise ImportFileError(name, '"metadata" must be a JSON object', number)
            records.append(QueryRecord(qid, text, meta, _split_tags(obj.get("tags")), number))
    elif suffix == ".csv":
        content = _read_text(path, name)
        reader = csv.DictReader(io.StringIO(content))
        fields = {f.strip().lower(): f for f in reader.fieldnames or []}
        if "text" not in fields:
            raise ImportFileError(name, 'the CSV needs a header row with a "text" column (and optionally id, tags)', 1)
        for row in reader:
            number = reader.line_num
            text = (row.get(fields["text"]) or "").strip()
            if not text:
                raise ImportFileError(name, "empty query text", number)
            qid = (row.get(fields["id"]) or "").strip() if "id" in fields else ""
            tags = _split_tags(row.get(fields["tags"])) if "tags" in fields else []
            records.append(QueryRecord(qid or str(len(records) + 1), text, {}, tags, number))
    else:
        for number, line in _lines(path, name):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            qid, sep, text = line.partition("\t")
            if not sep:
                qid, text = str(len(records) + 1), line
            if not text.strip() or not qid.strip():
                raise ImportFileError(name, "expected 'id<TAB>text' or just the query text", number)
            records.append(QueryRecord(qid.strip(), text.strip(), {}, [], number))
    if not records:
        raise ImportFileError(name, "the file is empty")
    _check_unique(records, name, "query")
    return records


# --- qrels ---------------------------------------------------------------------------------------------------------


def parse_qrels_file(path: Path, name: str) -> list[QrelRecord]:
    """BEIR qrels TSV (``query-id corpus-id score``, header optional) or TREC qrels (``qid iter docid grade``)."""
    records: list[QrelRecord] = []
    seen: dict[tuple[str, str], int] = {}
    for number, line in _lines(path, name):
        parts = line.split()
        if not parts:
            continue
        if number == 1 and parts[0].lower() in {"query-id", "query_id", "qid", "query"}:
            continue
        if len(parts) == 3:
            qid, did, grade_s = parts
        elif len(parts) == 4:
            qid, _, did, grade_s = parts
        else:
            raise ImportFileError(
                name, f"expected 3 columns (BEIR: query-id corpus-id score) or 4 (TREC), found {len(parts)}", number
            )
        try:
            grade = int(grade_s)
        except ValueError:
            raise ImportFileError(name, f"grade {grade_s!r} is not a whole number", number) from None
        key = (qid, did)
        if key in seen:
            raise ImportFileError(
                name, f"duplicate judgment for query {qid} and document {did} (line {seen[key]})", number
            )
        seen[key] = number
        records.append(QrelRecord(qid, did, grade, number))
    if not records:
        raise ImportFileError(name, "the file has no judgments")
    return records


def parse_grade_map(spec: str) -> dict[int, int]:
    """``"-1:0,4:3"`` -> ``{-1: 0, 4: 3}``: which imported grade becomes which. Empty means no mapping."""
    mapping: dict[int, int] = {}
    for entry in re.split(r"[,;\s]+", spec.strip()):
        if not entry:
            continue
        source, sep, target = entry.partition(":")
        try:
            if not sep:
                raise ValueError
            old, new = int(source), int(target)
        except ValueError:
            raise PermanentJobError(
                f"Grade map entry {entry!r} is not FROM:TO with whole numbers (e.g. -1:0,4:3)."
            ) from None
        if old in mapping and mapping[old] != new:
            raise PermanentJobError(f"Grade map sends grade {old} both to {mapping[old]} and to {new}.")
        mapping[old] = new
    return mapping


def grade_map_text(mapping: dict[int, int]) -> str:
    """The inverse of :func:`parse_grade_map`, in a stable order."""
    return ",".join(f"{old}:{new}" for old, new in sorted(mapping.items()))


BEIR_REQUIRED = ("corpus.jsonl", "queries.jsonl")


def beir_folder_files(folder: Path) -> tuple[Path, Path, list[Path]]:
    """The corpus, queries and qrels files of a BEIR folder, or an error naming what is missing."""
    missing = [f for f in BEIR_REQUIRED if not (folder / f).is_file()]
    qrels = sorted((folder / "qrels").glob("*.tsv")) if (folder / "qrels").is_dir() else []
    if not qrels:
        missing.append("qrels/*.tsv")
    if missing:
        raise ImportFileError(str(folder), f"not a complete BEIR folder: missing {', '.join(missing)}")
    return folder / "corpus.jsonl", folder / "queries.jsonl", qrels
