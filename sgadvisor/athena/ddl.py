"""An Athena table's scheme: its columns, partition keys, storage and table properties.

Two sources give the same :class:`TableScheme`: the ``CREATE EXTERNAL TABLE`` statement the user ran
(``--athena-ddl FILE``, offline) and Athena's ``GetTableMetadata`` (``TableMetadata.Columns``,
``PartitionKeys`` and ``Parameters``, where Athena flattens the storage descriptor into ``location``,
``inputformat``, ``serde.serialization.lib`` and ``serde.param.*`` beside the TBLPROPERTIES, the
``projection.*`` keys among them). :func:`render_ddl` writes the statement ``sgadvisor athena-ddl`` prints.

The statement is read with a small tokenizer of the Hive DDL Athena accepts (backquoted names, quoted
properties, comments), not a full SQL parser: only the clauses that say where and how the records are
stored matter here, and an unknown clause is skipped rather than refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from sgadvisor.errors import InputError
from sgadvisor.flowlogs.fields import Kind, normalize_field_name, spec_for

Storage = Literal["text", "parquet"]

PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
TEXT_SERDE = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"

# Column names of the first Athena flow-log table AWS documented (before the fields had their own names).
_LEGACY_COLUMNS = {
    "account": "account-id",
    "interfaceid": "interface-id",
    "sourceaddress": "srcaddr",
    "destinationaddress": "dstaddr",
    "sourceport": "srcport",
    "destinationport": "dstport",
    "numpackets": "packets",
    "numbytes": "bytes",
    "starttime": "start",
    "endtime": "end",
    "logstatus": "log-status",
}
_STRING_TYPES = ("string", "varchar", "char")


class ColumnDef(BaseModel):
    """A column or partition key: its name as the table spells it and its Hive type (lower case)."""

    model_config = ConfigDict(frozen=True)

    name: str
    type: str

    @property
    def is_string(self) -> bool:
        return self.type.startswith(_STRING_TYPES)

    @property
    def field(self) -> str:
        """The flow-log field this column holds (``pkt_srcaddr`` → ``pkt-srcaddr``)."""
        name = self.name.lower()
        return _LEGACY_COLUMNS.get(name) or normalize_field_name(name)


class Projection(BaseModel):
    """``projection.<key>.*`` of one partition key (Athena partition projection)."""

    model_config = ConfigDict(frozen=True)

    type: str
    range: str | None = None
    format: str | None = None
    values: tuple[str, ...] = ()
    interval: int | None = None
    unit: str | None = None
    digits: int | None = None


class TableScheme(BaseModel):
    """Where and how an Athena table's flow-log records are stored."""

    model_config = ConfigDict(frozen=True)

    database: str | None = None
    name: str
    columns: tuple[ColumnDef, ...]
    partition_keys: tuple[ColumnDef, ...] = ()
    location: str | None = None
    storage: Storage = "text"
    field_delimiter: str = " "
    skip_header_lines: int = 0
    properties: dict[str, str] = {}

    @property
    def qualified_name(self) -> str:
        """``"database"."table"`` as the query names it (Trino quoting)."""
        parts = [self.database, self.name] if self.database else [self.name]
        return ".".join(quote_identifier(p) for p in parts)

    @property
    def projection_enabled(self) -> bool:
        return self.properties.get("projection.enabled", "").strip().lower() == "true"

    @property
    def location_template(self) -> str | None:
        return self.properties.get("storage.location.template")

    def projection(self, key: str) -> Projection | None:
        """The projection of a partition key, when projection is enabled and the key has a type."""
        if not self.projection_enabled:
            return None
        prefix = f"projection.{key}."
        props = {k[len(prefix) :].lower(): v for k, v in self.properties.items() if k.startswith(prefix)}
        kind = props.get("type")
        if kind is None:
            return None
        return Projection(
            type=kind.strip().lower(),
            range=props.get("range"),
            format=props.get("format"),
            values=tuple(v.strip() for v in props.get("values", "").split(",") if v.strip()),
            interval=_int_or_none(props.get("interval")),
            unit=props.get("interval.unit"),
            digits=_int_or_none(props.get("digits")),
        )

    def column_for(self, field: str) -> ColumnDef | None:
        """The data column holding a flow-log field (AWS hyphenated name), if the table has one."""
        for column in self.columns:
            if column.field == field:
                return column
        return None

    @property
    def fields(self) -> tuple[str, ...]:
        """The flow-log fields of the table's data columns, in column order."""
        return tuple(c.field for c in self.columns)


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


# ------------------------------------------------------------------------------------------- parsing


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # word | ident (backquoted) | string | punct
    text: str
    start: int
    end: int

    def is_word(self, *words: str) -> bool:
        return self.kind == "word" and self.text.upper() in words


_TOKEN_RE = re.compile(
    r"""(?P<space>\s+)
      | (?P<comment>--[^\n]*|/\*.*?\*/)
      | (?P<ident>`(?:[^`]|``)*`)
      | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<word>[A-Za-z0-9_$]+)
      | (?P<punct>[(),<>=;.:\[\]])""",
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", "'": "'", '"': '"'}


def _unquote(token: _Token) -> str:
    if token.kind == "ident":
        return token.text[1:-1].replace("``", "`")
    if token.kind != "string":
        return token.text
    body = token.text[1:-1]
    out: list[str] = []
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body):
            octal = re.match(r"[0-7]{3}", body[index + 1 :])
            if octal:
                out.append(chr(int(octal.group(0), 8)))
                index += 4
                continue
            nxt = body[index + 1]
            out.append(_ESCAPES.get(nxt, nxt))
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN_RE.match(text, position)
        if match is None:
            raise InputError(
                f"--athena-ddl: unexpected {text[position]!r} at character {position + 1}",
                hint="pass the CREATE EXTERNAL TABLE statement as you ran it in Athena",
            )
        kind = match.lastgroup or ""
        if kind not in ("space", "comment"):
            tokens.append(_Token(kind, match.group(0), match.start(), match.end()))
        position = match.end()
    return tokens


class _Cursor:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.index = 0

    def peek(self, ahead: int = 0) -> _Token | None:
        index = self.index + ahead
        return self.tokens[index] if index < len(self.tokens) else None

    def next(self) -> _Token:
        token = self.peek()
        if token is None:
            raise self.error("the statement ends early")
        self.index += 1
        return token

    def accept(self, *words: str) -> bool:
        token = self.peek()
        if token is not None and (token.is_word(*words) or (token.kind == "punct" and token.text in words)):
            self.index += 1
            return True
        return False

    def expect(self, *words: str) -> _Token:
        token = self.next()
        if not (token.is_word(*words) or (token.kind == "punct" and token.text in words)):
            raise self.error(f"expected {' or '.join(words)}, found {token.text!r}")
        return token

    def name(self) -> str:
        token = self.next()
        if token.kind not in ("word", "ident", "string"):
            raise self.error(f"expected a name, found {token.text!r}")
        return _unquote(token)

    def string(self) -> str:
        token = self.next()
        if token.kind != "string":
            raise self.error(f"expected a quoted value, found {token.text!r}")
        return _unquote(token)

    def error(self, what: str) -> InputError:
        return InputError(
            f"--athena-ddl: {what}",
            hint="pass the CREATE EXTERNAL TABLE statement as you ran it in Athena",
        )


_CLAUSES = ("COMMENT", "PARTITIONED", "CLUSTERED", "ROW", "STORED", "LOCATION", "TBLPROPERTIES", "WITH")


def parse_ddl(text: str) -> TableScheme:
    """The scheme a ``CREATE [EXTERNAL] TABLE`` statement declares (InputError when it is not one, or
    its storage is neither delimited text nor Parquet)."""
    cur = _Cursor(text)
    cur.expect("CREATE")
    cur.accept("EXTERNAL")
    cur.expect("TABLE")
    if cur.accept("IF"):
        cur.expect("NOT")
        cur.expect("EXISTS")
    parts = [cur.name()]
    while cur.accept("."):
        parts.append(cur.name())
    database, name = (parts[-2], parts[-1]) if len(parts) >= 2 else (None, parts[0])
    cur.expect("(")
    columns = _column_list(cur)
    partition_keys: list[ColumnDef] = []
    serde: str | None = None
    input_format: str | None = None
    stored_as: str | None = None
    delimited = False
    delimiter: str | None = None
    serde_props: dict[str, str] = {}
    location: str | None = None
    properties: dict[str, str] = {}
    while (token := cur.peek()) is not None:
        if cur.accept(";"):
            break
        if cur.accept("COMMENT"):
            cur.string()
        elif cur.accept("PARTITIONED"):
            cur.expect("BY")
            cur.expect("(")
            partition_keys = _column_list(cur)
        elif cur.accept("ROW"):
            cur.expect("FORMAT")
            if cur.accept("DELIMITED"):
                delimited = True
                delimiter = _delimited(cur)
            else:
                cur.expect("SERDE")
                serde = cur.string()
                if cur.accept("WITH"):
                    cur.expect("SERDEPROPERTIES")
                    serde_props = _property_list(cur)
        elif cur.accept("WITH"):
            cur.expect("SERDEPROPERTIES")
            serde_props = _property_list(cur)
        elif cur.accept("STORED"):
            cur.expect("AS")
            if cur.accept("INPUTFORMAT"):
                input_format = cur.string()
                cur.expect("OUTPUTFORMAT")
                cur.string()
            else:
                stored_as = cur.name().upper()
        elif cur.accept("LOCATION"):
            location = cur.string()
        elif cur.accept("TBLPROPERTIES"):
            properties = _property_list(cur)
        else:
            _skip_clause(cur, token)
    if "field.delim" in serde_props:
        delimiter = serde_props["field.delim"]
    storage = _storage(serde, input_format, stored_as, delimited)
    return TableScheme(
        database=database,
        name=name,
        columns=tuple(columns),
        partition_keys=tuple(partition_keys),
        location=location,
        storage=storage,
        field_delimiter=delimiter if delimiter is not None else " ",
        skip_header_lines=_skip_lines(properties),
        properties=properties,
    )


def _skip_clause(cur: _Cursor, token: _Token) -> None:
    """An unknown clause (CLUSTERED BY …, a table COMMENT written oddly): skip to the next known one."""
    cur.next()
    depth = 1 if token.text == "(" else 0
    while (nxt := cur.peek()) is not None:
        if depth == 0 and (nxt.is_word(*_CLAUSES) or nxt.text == ";"):
            return
        if nxt.text == "(":
            depth += 1
        elif nxt.text == ")":
            depth = max(depth - 1, 0)
        cur.next()


def _column_list(cur: _Cursor) -> list[ColumnDef]:
    """``name type [COMMENT '…'], … )`` — the opening parenthesis already read."""
    columns: list[ColumnDef] = []
    while True:
        name = cur.name()
        first = cur.peek()
        if first is None:
            raise cur.error("the column list ends early")
        depth = 0
        end = first.start
        while (token := cur.peek()) is not None:
            if depth == 0 and (token.text in (",", ")") or token.is_word("COMMENT")):
                break
            if token.text in ("(", "<"):
                depth += 1
            elif token.text in (")", ">"):
                depth -= 1
            end = token.end
            cur.next()
        type_text = re.sub(r"\s+", "", cur.text[first.start : end]).lower()
        if not type_text:
            raise cur.error(f"column {name!r} has no type")
        if cur.accept("COMMENT"):
            cur.string()
        columns.append(ColumnDef(name=name, type=type_text))
        if cur.accept(")"):
            return columns
        cur.expect(",")


def _delimited(cur: _Cursor) -> str | None:
    """``ROW FORMAT DELIMITED`` sub-clauses; the field delimiter if given."""
    delimiter = None
    while True:
        if cur.accept("FIELDS"):
            cur.expect("TERMINATED")
            cur.expect("BY")
            delimiter = cur.string()
            if cur.accept("ESCAPED"):
                cur.expect("BY")
                cur.string()
        elif cur.accept("COLLECTION"):
            cur.expect("ITEMS")
            cur.expect("TERMINATED")
            cur.expect("BY")
            cur.string()
        elif cur.accept("MAP"):
            cur.expect("KEYS")
            cur.expect("TERMINATED")
            cur.expect("BY")
            cur.string()
        elif cur.accept("LINES"):
            cur.expect("TERMINATED")
            cur.expect("BY")
            cur.string()
        elif cur.accept("NULL"):
            cur.expect("DEFINED")
            cur.expect("AS")
            cur.string()
        else:
            return delimiter


def _property_list(cur: _Cursor) -> dict[str, str]:
    """``( 'key' = 'value', … )``."""
    cur.expect("(")
    props: dict[str, str] = {}
    if cur.accept(")"):
        return props
    while True:
        key = cur.name()
        cur.expect("=")
        props[key] = cur.string()
        if cur.accept(")"):
            return props
        cur.expect(",")


def _storage(serde: str | None, input_format: str | None, stored_as: str | None, delimited: bool) -> Storage:
    described = " ".join(x for x in (serde, input_format, stored_as) if x).lower()
    if "parquet" in described:
        return "parquet"
    if delimited or not described or "lazysimpleserde" in described or "textinputformat" in described:
        if stored_as not in (None, "TEXTFILE"):
            raise _unsupported(stored_as)
        return "text"
    raise _unsupported(serde or input_format or stored_as)


def _unsupported(what: str | None) -> InputError:
    return InputError(
        f"Athena table stored as {what}: flow logs are read from delimited text or Parquet only",
        hint="use the table of the flow logs' S3 delivery (text or Parquet), e.g. `sgadvisor athena-ddl`",
    )


def _skip_lines(properties: Mapping[str, str]) -> int:
    value = _int_or_none(properties.get("skip.header.line.count"))
    return max(value or 0, 0)


def from_table_metadata(metadata: Mapping[str, Any], database: str | None = None) -> TableScheme:
    """The scheme in ``GetTableMetadata``'s ``TableMetadata``."""
    params = {str(k): str(v) for k, v in (metadata.get("Parameters") or {}).items()}

    def columns(key: str) -> tuple[ColumnDef, ...]:
        return tuple(
            ColumnDef(name=str(c["Name"]), type=re.sub(r"\s+", "", str(c.get("Type", "string"))).lower())
            for c in metadata.get(key) or []
        )

    serde = params.get("serde.serialization.lib")
    input_format = params.get("inputformat")
    storage = _storage(serde, input_format, None, delimited=False)
    delimiter = params.get("serde.param.field.delim", " ")
    storage_keys = ("location", "inputformat", "outputformat", "serde.serialization.lib")
    properties = {
        k: v for k, v in params.items() if k not in storage_keys and not k.startswith("serde.param.")
    }
    return TableScheme(
        database=database,
        name=str(metadata.get("Name", "")),
        columns=columns("Columns"),
        partition_keys=columns("PartitionKeys"),
        location=params.get("location"),
        storage=storage,
        field_delimiter=delimiter,
        skip_header_lines=_skip_lines(params),
        properties=properties,
    )


# ------------------------------------------------------------------------------------------- rendering

# 32-bit in AWS's own flow-log tables; every other integer field is bigint.
_INT_FIELDS = frozenset({"version", "srcport", "dstport", "tcp-flags", "traffic-path", "encryption-status"})
_REGION_SEGMENT = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d+$")


def column_type(field: str) -> str:
    """The Hive type of a flow-log field in AWS's flow-log tables."""
    if spec_for(field).kind is Kind.INT:
        return "int" if field in _INT_FIELDS else "bigint"
    return "string"


def column_name(field: str) -> str:
    return field.replace("-", "_")


def render_ddl(
    location: str,
    log_format: Sequence[str],
    *,
    parquet: bool = False,
    table: str = "vpc_flow_logs",
    regions: Sequence[str] = (),
    first_day: str = "2020/01/01",
    per_hour: bool = False,
) -> str:
    """A ``CREATE EXTERNAL TABLE`` with partition projection over the flow logs' S3 delivery (non-Hive
    layout ``…/AWSLogs/<account>/vpcflowlogs/<region>/yyyy/MM/dd/``), for ``sgadvisor athena-ddl``.

    ``location`` is the ``vpcflowlogs/`` folder (then the region is a projected ``enum`` key over
    ``regions``) or one region's folder below it (then only the day is a key). The day key is projected
    as a ``date`` in the delivery's ``yyyy/MM/dd`` folders, so a query prunes to the days it names; with
    ``per_hour`` (a flow log delivered with ``PerHourPartition``: ``yyyy/MM/dd/HH`` folders) the key is
    projected by the hour, and a query prunes to the hours it names."""
    if not location.startswith("s3://"):
        raise InputError(f"--location {location!r} is not an s3:// URI", hint=_LOCATION_HINT)
    base = location if location.endswith("/") else location + "/"
    last = base.rstrip("/").rsplit("/", 1)[-1]
    per_region = bool(_REGION_SEGMENT.match(last))
    if not per_region and last != "vpcflowlogs":
        raise InputError(f"--location {location!r} is not a vpcflowlogs/ folder", hint=_LOCATION_HINT)
    if not per_region and not regions:
        raise InputError(
            "--location names every region's flow logs: say which with --region", hint=_LOCATION_HINT
        )
    fields = [normalize_field_name(f) for f in log_format]
    region_key = "delivery_region" if "region" in fields else "region"
    lines = [f"CREATE EXTERNAL TABLE IF NOT EXISTS {_ddl_name(table)} ("]
    lines += [
        f"  {_ddl_name(column_name(f))} {column_type(f)}{',' if i < len(fields) - 1 else ''}"
        for i, f in enumerate(fields)
    ]
    keys = [f"{_ddl_name(k)} string" for k in ([] if per_region else [region_key]) + ["day"]]
    lines.append(")")
    lines.append(f"PARTITIONED BY ({', '.join(keys)})")
    if parquet:
        lines += [
            f"ROW FORMAT SERDE '{PARQUET_SERDE}'",
            f"STORED AS INPUTFORMAT '{PARQUET_INPUT}'",
            f"OUTPUTFORMAT '{PARQUET_OUTPUT}'",
        ]
    else:
        lines += ["ROW FORMAT DELIMITED", "FIELDS TERMINATED BY ' '"]
    lines.append(f"LOCATION '{base}'")
    props: list[tuple[str, str]] = []
    if not parquet:
        props.append(("skip.header.line.count", "1"))
    props.append(("projection.enabled", "true"))
    template = f"{base}${{day}}" if per_region else f"{base}${{{region_key}}}/${{day}}"
    if not per_region:
        props += [
            (f"projection.{region_key}.type", "enum"),
            (f"projection.{region_key}.values", ",".join(regions)),
        ]
    # AWS user guide, "Create a table for flow logs in Apache Parquet format" (per-hour partitions:
    # projection.day.format 'yyyy/MM/dd/HH', interval unit HOURS).
    props += [
        ("projection.day.type", "date"),
        ("projection.day.range", f"{first_day}{'/00' if per_hour else ''},NOW"),
        ("projection.day.format", "yyyy/MM/dd/HH" if per_hour else "yyyy/MM/dd"),
        ("projection.day.interval", "1"),
        ("projection.day.interval.unit", "HOURS" if per_hour else "DAYS"),
        ("storage.location.template", template),
    ]
    lines.append("TBLPROPERTIES (")
    lines += [f"  '{k}' = '{v}'{',' if i < len(props) - 1 else ''}" for i, (k, v) in enumerate(props)]
    lines.append(")")
    return "\n".join(lines) + "\n"


_LOCATION_HINT = "e.g. --location s3://BUCKET/AWSLogs/123456789012/vpcflowlogs/ --region eu-west-1"


def _ddl_name(name: str) -> str:
    return f"`{name}`" if not re.fullmatch(r"[a-z_][a-z0-9_]*", name) or name in _RESERVED else name


# Words Athena's DDL reserves among the names used here (Athena user guide, "Reserved keywords").
_RESERVED = frozenset({"end", "date", "timestamp", "year", "month", "day", "hour", "time"})
