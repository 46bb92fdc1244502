"""File reading shared by the loaders, and the one error every loader raises for a malformed file (naming the
file, the line and the reason): a missing file, a directory where a file belongs, bytes that are not UTF-8, a
line that is not a JSON object, an empty file.

Rows of tabular data (`read_rows`) come as (line number, dict); a per-language file set is a path pattern with
`{lang}` (the code, `mgsm_{lang}.tsv`) or `{language}` (the English name, `{language}.jsonl` -> `Swahili.jsonl` or
`swahili.jsonl`), expanded by `language_files`.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any, Callable, Iterator

from pydantic import ValidationError

from langmix import languages as langs
from langmix.errors import UserInputError
from langmix.records import Example

log = logging.getLogger(__name__)

PLACEHOLDERS = ("{lang}", "{language}")


class DataFormatError(UserInputError):
    def __init__(self, path, line: int | None, reason: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {reason}")
        self.path, self.line, self.reason = str(path), line, reason


def require_file(path: str | Path) -> Path:
    """The path, if it is a readable file; a missing path or a directory is a DataFormatError."""
    path = Path(path)
    if path.is_dir():
        raise DataFormatError(path, None, "is a directory, expected a file")
    if not path.is_file():
        raise DataFormatError(path, None, "no such file")
    return path


def require_dir(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise DataFormatError(path, None, "is a file, expected a directory" if path.exists() else "no such directory")
    return path


def _decode(path: Path, lineno: int, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataFormatError(path, lineno, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column "
                              f"{exc.start + 1}); re-encode the file as UTF-8") from None


BOM = b"\xef\xbb\xbf"


def iter_raw_lines(path: str | Path) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) for each line, a leading UTF-8 byte-order mark dropped (Windows editors write one):
    every reader of line-based input goes through here, so none reads the BOM as part of line 1."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            yield lineno, raw[len(BOM):] if lineno == 1 and raw.startswith(BOM) else raw


def iter_lines(path: str | Path, whole: Callable[[str], bool] | None = None) -> Iterator[tuple[int, str]]:
    """(line number, text) for each line, decoded as UTF-8 (a leading BOM is dropped); bad bytes name the line.

    LF, CRLF and CR-only (old Mac) line endings are read: a file whose text holds no line feed but at its end and
    carriage returns inside is read as the lines its CRs end (each given a LF), so every line-based reader (JSONL,
    TSV/CSV, API-Bank schemas, translation memories) reads such a file as lines, not as one; except where `whole`
    says the one line is whole as it is (a JSON object whose whitespace holds CRs)."""
    path = require_file(path)
    lines = ((lineno, _decode(path, lineno, raw)) for lineno, raw in iter_raw_lines(path))
    first = next(lines, None)
    if first is None:
        return
    second = next(lines, None)
    body = first[1][:-1] if first[1].endswith("\n") else first[1]
    if second is None and "\r" in body.rstrip("\r") and not (whole and whole(first[1])):
        parts = body.split("\r")
        if parts[-1] == "":
            parts.pop()
        yield from ((i, part + "\n") for i, part in enumerate(parts, 1))
        return
    yield first
    if second is not None:
        yield second
        yield from lines


def read_text(path: str | Path) -> str:
    """A whole file as UTF-8 text; bad bytes are an error naming their line."""
    return "".join(text for _, text in iter_lines(path))


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; anything but a JSON object is a DataFormatError."""
    for lineno, line in iter_lines(path, whole=_is_json):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataFormatError(path, lineno, f"not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise DataFormatError(path, lineno, f"expected a JSON object, got {type(row).__name__}")
        yield lineno, row


def iter_json_array(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """A `.json` file: a top-level array of objects (each with the line it starts on), or JSON lines."""
    text = read_text(path)
    start = len(text) - len(text.lstrip())
    if text[start:start + 1] != "[":
        if text[start:start + 1] == "{" and text.strip().count("\n"):
            try:
                whole = json.loads(text)
            except json.JSONDecodeError:
                whole = None
            if isinstance(whole, dict):
                raise DataFormatError(path, 1, "one JSON object spanning several lines; expected an array of "
                                      "objects or one object per line")
        yield from iter_jsonl(path)
        return
    decoder, pos = json.JSONDecoder(), start + 1

    def skip(p: int) -> int:
        while p < len(text) and text[p] in " \t\r\n":
            p += 1
        return p

    pos = skip(pos)
    while pos < len(text) and text[pos] != "]":
        lineno = text.count("\n", 0, pos) + 1
        try:
            row, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise DataFormatError(path, text.count("\n", 0, exc.pos) + 1, f"not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise DataFormatError(path, lineno, f"expected a JSON object, got {type(row).__name__}")
        yield lineno, row
        pos = skip(pos)
        if pos < len(text) and text[pos] == ",":
            pos = skip(pos + 1)
        elif pos < len(text) and text[pos] != "]":
            raise DataFormatError(path, text.count("\n", 0, pos) + 1, "not valid JSON (expected ',' or ']')")
    if pos >= len(text):
        raise DataFormatError(path, text.count("\n") + 1, "not valid JSON (the array is not closed)")


def iter_delimited(path: str | Path, delimiter: str, header: bool) -> Iterator[tuple[int, dict[str, Any]]]:
    """CSV/TSV rows as dicts: by header names, or (without a header) by column position "0", "1", ...

    Fields are not quoted in TSV (MGSM's questions hold bare quote marks); CSV follows the usual quoting. LF, CRLF
    and CR-only line endings are read; a stray CR inside an unquoted field is a DataFormatError naming its line."""
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    lines = iter_lines(path)
    numbered: list[int] = []

    def text_lines() -> Iterator[str]:
        for lineno, text in lines:
            numbered.append(lineno)
            yield text

    reader = csv.reader(text_lines(), delimiter=delimiter, quoting=quoting)
    names: list[str] | None = None
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            why = "a carriage return (CR) inside the line (a stray CR, or mixed line endings): save the file with " \
                "LF or CRLF line endings, or quote the field (CSV)" if "new-line" in str(exc) else str(exc)
            raise DataFormatError(path, numbered[-1] if numbered else None, why) from None
        lineno = numbered[-1]
        if not any(c.strip() for c in cells):
            continue
        if header and names is None:
            names = [c.strip() for c in cells]
            continue
        if names is not None and len(cells) != len(names):
            raise DataFormatError(path, lineno, f"expected {len(names)} fields as in the header, got {len(cells)}")
        yield lineno, dict(zip(names or [str(i) for i in range(len(cells))], cells))


def read_rows(path: str | Path, header: bool = True) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) for a local `.jsonl`, `.json`, `.tsv`, `.csv` or `.parquet` file (parquet: row number).

    `header=False` reads TSV/CSV positionally (columns "0", "1", ...), as MGSM's question<TAB>answer files."""
    path = require_file(path)
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        yield from iter_jsonl(path)
    elif suffix == ".json":
        yield from iter_json_array(path)
    elif suffix in (".tsv", ".csv"):
        yield from iter_delimited(path, "\t" if suffix == ".tsv" else ",", header)
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        for i, row in enumerate(pq.read_table(path).to_pylist(), 1):
            yield i, row
    else:
        raise DataFormatError(path, None, "expected a .jsonl, .json, .tsv, .csv or .parquet file")


def is_pattern(path: str) -> bool:
    return any(p in path for p in PLACEHOLDERS)


def language_files(pattern: str, languages: list[str] | None = None) -> dict[str, Path]:
    """{code: file} for the languages whose file exists; `languages` default to the whole registry.

    `{lang}` is the code (`sw`), `{language}` the English name as written or in lower case (`Swahili`, `swahili`).
    Logs which languages were found; none found is a DataFormatError naming the files looked for."""
    wanted = langs.resolve_all(languages) if languages else langs.known_codes()
    found: dict[str, Path] = {}
    tried: list[str] = []
    for code in wanted:
        name = langs.get(code).name
        candidates = dict.fromkeys(pattern.replace("{lang}", code).replace("{language}", n)
                                   for n in (name, name.lower()))
        tried += candidates
        for candidate in candidates:
            if Path(candidate).is_file():
                found[code] = Path(candidate)
                break
            if Path(candidate).is_dir():
                raise DataFormatError(candidate, None, "is a directory, expected a file")
    if not found:
        shown = ", ".join(tried[:6]) + (" ..." if len(tried) > 6 else "")
        raise DataFormatError(pattern, None, f"no file for any of the languages {wanted} (looked for {shown})")
    missing = [c for c in wanted if c not in found]
    log.info("%s: found %d of %d languages: %s%s", pattern, len(found), len(wanted), ", ".join(found),
             f" (no file for {', '.join(missing)})" if missing else "")
    return found


ROLES = ("system", "user", "assistant", "tool")


def load_example_file(path: str | Path) -> list[Example]:
    """langmix's own JSONL (one `Example` per line, as `write_mixture` writes it). A line that is not an example,
    an example without messages or with a message lacking role/content, an unknown language, an id given twice in one
    language, or a file without examples is an error. Languages are stored as their registry codes ('EN' -> 'en')."""
    out = []
    first_line: dict[tuple[str, str], int] = {}
    for lineno, row in iter_jsonl(path):
        try:
            ex = Example.model_validate(row)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise DataFormatError(path, lineno, f"not a valid example: {loc}: {first['msg']} "
                                  f"({exc.error_count()} problem(s))") from None
        if not ex.messages:
            raise DataFormatError(path, lineno, "example has no messages")
        for i, m in enumerate(ex.messages):
            if m.get("role") not in ROLES or not isinstance(m.get("content"), str):
                raise DataFormatError(path, lineno, f"message {i} needs a role ({', '.join(ROLES)}) and content")
        try:
            code = langs.resolve(ex.language).code  # 'EN', 'English', 'en-US' are en; 'xx' is refused
        except langs.UnknownLanguageError as exc:
            raise DataFormatError(path, lineno, str(exc)) from None
        if code != ex.language:
            ex = ex.model_copy(update={"language": code})
        if (ex.id, code) in first_line:  # an id shared across languages is fine (one item, translated)
            raise DataFormatError(path, lineno, f"id {ex.id!r} in {code} is given twice (first at line "
                                  f"{first_line[ex.id, code]})")
        first_line[ex.id, code] = lineno
        out.append(ex)
    if not out:
        raise DataFormatError(path, None, "no examples in file")
    return out
