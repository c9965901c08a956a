"""The SQL engine behind the local Athena endpoint: Trino SQL run by DuckDB over flow-log files.

Tables are registered from the CREATE EXTERNAL TABLE statement a user runs in Athena (AWS's documented
flow-log DDL, parsed here with sqlglot's Hive dialect, independently of ``sgadvisor.athena.ddl``), with a
local folder standing for the table's S3 location. A query runs the way Athena runs it:

1. its table is found, and its partitions listed as Athena would see them: from partition projection
   (``storage.location.template`` with each key's projected values; the Hive ``key=value`` layout when
   there is no template) or, without projection, from the Hive-style folders (what MSCK REPAIR TABLE
   registers);
2. the query's WHERE conjuncts on partition keys alone are evaluated over those partitions (by DuckDB,
   on a table of partition values typed as the DDL declares them): only the files of the partitions kept
   are read, and ``DataScannedInBytes`` is their size (text: the whole gzip file, as Athena bills it;
   Parquet: the whole file too, an upper bound of the column chunks Athena reads);
3. the table becomes a DuckDB view over those files as Athena's SerDes read them: text split on the
   field delimiter by position (LazySimpleSerDe: a value that is not a number reads as NULL in a numeric
   column, extra fields are ignored, missing ones are NULL, ``skip.header.line.count`` lines skipped per
   file), Parquet columns by name; ``"$path"`` is the file's S3 URI and ``"$file_size"`` its size;
4. the query is transpiled from Trino to DuckDB by sqlglot, with the table's column types so that
   integer division stays integer division, and executed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import sqlglot
from sqlglot import expressions as exp
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.qualify import qualify

PATH_COLUMN = "$path"
SIZE_COLUMN = "$file_size"


class QueryError(Exception):
    """The query cannot run (Athena's FAILED state); ``category`` as AthenaError.ErrorCategory:
    1 system, 2 user, 3 other."""

    def __init__(self, message: str, category: int = 2) -> None:
        super().__init__(message)
        self.category = category


@dataclass(frozen=True)
class Partition:
    values: dict[str, str]
    files: tuple[Path, ...]


@dataclass
class Table:
    """A registered table: its DDL as sqlglot reads it, and the local folder of its S3 location."""

    database: str
    name: str
    ddl: str
    root: Path  # the local folder standing for ``s3_root``
    s3_root: str  # an s3:// prefix: every path of the table lies under it
    columns: list[tuple[str, str]] = field(default_factory=list)
    partition_keys: list[tuple[str, str]] = field(default_factory=list)
    properties: dict[str, str] = field(default_factory=dict)
    location: str = ""
    serde: str = ""
    input_format: str = ""
    delimiter: str = " "
    create_time: float = 0.0

    @classmethod
    def from_ddl(cls, database: str, ddl: str, root: Path, s3_root: str) -> Table:
        statement = sqlglot.parse_one(ddl, read="hive")
        if not isinstance(statement, exp.Create) or not isinstance(statement.this, exp.Schema):
            raise ValueError("not a CREATE TABLE statement")
        schema = statement.this
        table_name = schema.this.name
        columns = [(c.name, c.args["kind"].sql("hive").lower()) for c in schema.expressions]
        table = cls(database, table_name, ddl, root, s3_root.rstrip("/") + "/", columns)
        for prop in (statement.args.get("properties") or exp.Properties()).expressions:
            if isinstance(prop, exp.PartitionedByProperty):
                table.partition_keys = [
                    (c.name, c.args["kind"].sql("hive").lower()) for c in prop.this.expressions
                ]
            elif isinstance(prop, exp.LocationProperty):
                table.location = prop.this.name
            elif isinstance(prop, exp.RowFormatDelimitedProperty):
                table.serde = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
                table.input_format = "org.apache.hadoop.mapred.TextInputFormat"
                fields = prop.args.get("fields")
                if fields is not None:
                    table.delimiter = fields.name
            elif isinstance(prop, exp.RowFormatSerdeProperty):
                table.serde = prop.this.name
            elif isinstance(prop, exp.FileFormatProperty):
                value = prop.this
                fmt = value.args.get("input_format") if isinstance(value, exp.InputOutputFormat) else value
                table.input_format = fmt.name if fmt is not None else ""
            elif isinstance(prop, exp.Property) and prop.args.get("value") is not None:
                table.properties[prop.name] = prop.args["value"].name
        if not table.location.startswith(table.s3_root):
            raise ValueError(f"LOCATION {table.location} is not under {table.s3_root}")
        return table

    @property
    def parquet(self) -> bool:
        return "parquet" in f"{self.serde} {self.input_format}".lower()

    @property
    def skip_header(self) -> int:
        return int(self.properties.get("skip.header.line.count", "0") or 0)

    def table_metadata(self) -> dict[str, Any]:
        """GetTableMetadata's TableMetadata: the storage descriptor flattened into Parameters."""
        parameters = {
            "EXTERNAL": "TRUE",
            "location": self.location,
            "inputformat": self.input_format,
            "outputformat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
            if not self.parquet
            else "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            "serde.serialization.lib": self.serde,
            **({} if self.parquet else {"serde.param.field.delim": self.delimiter}),
            **self.properties,
        }
        return {
            "Name": self.name,
            "CreateTime": self.create_time,
            "LastAccessTime": self.create_time,
            "TableType": "EXTERNAL_TABLE",
            "Columns": [{"Name": n, "Type": t} for n, t in self.columns],
            "PartitionKeys": [{"Name": n, "Type": t} for n, t in self.partition_keys],
            "Parameters": parameters,
        }

    # ---------------------------------------------------------------------------------- partitions

    def local(self, uri: str) -> Path:
        return self.root / uri[len(self.s3_root) :]

    def s3_uri(self, path: Path) -> str:
        return self.s3_root + path.relative_to(self.root).as_posix()

    def partitions(self) -> list[Partition]:
        """The table's partitions as Athena lists them (see the module docstring)."""
        base = self.local(self.location)
        files = sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else []
        if not self.partition_keys:
            return [Partition({}, tuple(files))]
        pattern = self._path_pattern()
        found: dict[tuple[str, ...], list[Path]] = {}
        for path in files:
            match = pattern.fullmatch(self.s3_uri(path.parent) + "/")
            if match is None:
                continue
            key = tuple(match.group(f"k{i}") for i in range(len(self.partition_keys)))
            found.setdefault(key, []).append(path)
        names = [n for n, _ in self.partition_keys]
        return [Partition(dict(zip(names, k, strict=True)), tuple(v)) for k, v in sorted(found.items())]

    def _path_pattern(self) -> re.Pattern[str]:
        template = self.properties.get("storage.location.template")
        projected = self.properties.get("projection.enabled", "").lower() == "true"
        index = {name: i for i, (name, _) in enumerate(self.partition_keys)}
        if projected and template:
            text = template.rstrip("/") + "/"
            out, position = [], 0
            for match in re.finditer(r"\$\{([^}]*)\}", text):
                out.append(re.escape(text[position : match.start()]))
                out.append(f"(?P<k{index[match.group(1)]}>{self._value_pattern(match.group(1))})")
                position = match.end()
            out.append(re.escape(text[position:]))
            return re.compile("".join(out))
        base = re.escape(self.location.rstrip("/") + "/")
        keys = "".join(f"{re.escape(n)}=(?P<k{i}>[^/]+)/" for i, (n, _) in enumerate(self.partition_keys))
        return re.compile(base + keys)

    def _value_pattern(self, key: str) -> str:
        kind = self.properties.get(f"projection.{key}.type", "").lower()
        if kind == "date":
            java = self.properties.get(f"projection.{key}.format", "yyyy-MM-dd")
            pattern = re.escape(java)
            for letters in ("yyyy", "MM", "dd", "HH", "mm"):
                pattern = pattern.replace(letters, rf"\d{{{len(letters)}}}")
            return pattern
        if kind == "enum":
            return "|".join(
                re.escape(v) for v in self.properties.get(f"projection.{key}.values", "").split(",")
            )
        if kind == "integer":
            return r"\d+"
        return r"[^/]+"

    # ---------------------------------------------------------------------------------- reading

    def view_sql(self, partitions: Sequence[Partition]) -> str:
        """A SELECT reading ``partitions`` as Athena's SerDe reads them, with the partition values,
        ``"$path"`` and ``"$file_size"``."""
        files = [p for part in partitions for p in part.files]
        names = [n for n, _ in self.partition_keys]
        mapping_rows = [
            [str(path), self.s3_uri(path), path.stat().st_size, *(part.values[n] for n in names)]
            for part in partitions
            for path in part.files
        ]
        mapping = _values_table(
            mapping_rows,
            ["_file", "_uri", "_size", *names],
            ["VARCHAR", "VARCHAR", "BIGINT"] + [_duck_type(t) for _, t in self.partition_keys],
        )
        if not files:
            columns = [f"CAST(NULL AS {_duck_type(t)}) AS {_q(n)}" for n, t in self.columns]
            keys = [f"CAST(NULL AS {_duck_type(t)}) AS {_q(n)}" for n, t in self.partition_keys]
            extra = [
                f"CAST(NULL AS VARCHAR) AS {_q(PATH_COLUMN)}",
                f"CAST(NULL AS BIGINT) AS {_q(SIZE_COLUMN)}",
            ]
            return f"SELECT {', '.join(columns + keys + extra)} WHERE false"
        file_list = "[" + ", ".join(_lit(str(f)) for f in files) + "]"
        if self.parquet:
            source = f"read_parquet({file_list}, filename=true, union_by_name=true)"
            available = {row[0].lower(): row[0] for row in _fetch(f"DESCRIBE SELECT * FROM {source}")}
            columns = [
                (
                    f"TRY_CAST(r.{_q(available[n.lower()])} AS {_duck_type(t)}) AS {_q(n)}"
                    if n.lower() in available
                    else f"CAST(NULL AS {_duck_type(t)}) AS {_q(n)}"
                )
                for n, t in self.columns
            ]
            file_column = "r.filename"
        else:
            delimiter = self.delimiter or "\x01"
            source = (
                f"read_csv({file_list}, columns={{'line': 'VARCHAR'}}, delim='\\x1e', header=false, "
                f"skip={self.skip_header}, quote='', escape='', filename=true, auto_detect=false)"
            )
            split = f"string_split(r.line, {_lit(delimiter)})"
            columns = [
                (
                    f"{split}[{i + 1}] AS {_q(n)}"
                    if _duck_type(t) == "VARCHAR"
                    else f"TRY_CAST({split}[{i + 1}] AS {_duck_type(t)}) AS {_q(n)}"
                )
                for i, (n, t) in enumerate(self.columns)
            ]
            file_column = "r.filename"
        keys = [f"m.{_q(n)}" for n in names]
        extra = [f"m._uri AS {_q(PATH_COLUMN)}", f"m._size AS {_q(SIZE_COLUMN)}"]
        return (
            f"SELECT {', '.join(columns + keys + extra)} FROM {source} AS r "
            f"JOIN ({mapping}) AS m ON m._file = {file_column}"
        )


def _fetch(query: str) -> list[Any]:
    relation = duckdb.sql(query)
    return [] if relation is None else relation.fetchall()


def _values_table(rows: Sequence[Sequence[Any]], names: Sequence[str], types: Sequence[str]) -> str:
    if not rows:
        nulls = ", ".join(f"CAST(NULL AS {t}) AS {_q(n)}" for n, t in zip(names, types, strict=True))
        return f"SELECT {nulls} WHERE false"
    body = ", ".join(
        "(" + ", ".join(f"CAST({_lit(v)} AS {t})" for v, t in zip(row, types, strict=True)) + ")"
        for row in rows
    )
    return f"SELECT * FROM (VALUES {body}) AS v({', '.join(_q(n) for n in names)})"


def _duck_type(hive: str) -> str:
    hive = hive.lower()
    if hive in ("int", "integer"):
        return "INTEGER"
    if hive == "bigint":
        return "BIGINT"
    if hive in ("smallint", "tinyint"):
        return "SMALLINT"
    if hive in ("double", "float"):
        return "DOUBLE"
    if hive == "date":
        return "DATE"
    if hive == "boolean":
        return "BOOLEAN"
    if hive.startswith("timestamp"):
        return "TIMESTAMP"
    return "VARCHAR"


def _trino_type(hive: str) -> str:
    return {"INTEGER": "integer", "BIGINT": "bigint", "SMALLINT": "smallint", "DOUBLE": "double",
            "DATE": "date", "BOOLEAN": "boolean", "TIMESTAMP": "timestamp"}.get(_duck_type(hive), "varchar")  # fmt: skip


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


# ------------------------------------------------------------------------------------------- queries


@dataclass(frozen=True)
class QueryResult:
    columns: list[tuple[str, str]]  # (name, Athena type)
    rows: list[list[str | None]]  # values as Athena prints them
    scanned_bytes: int
    partitions_read: int
    files_read: int


def execute(query: str, tables: Mapping[tuple[str, str], Table], database: str | None) -> QueryResult:
    """Run a Trino query over the registered tables (see the module docstring)."""
    try:
        tree = sqlglot.parse_one(query, read="trino")
    except sqlglot.errors.ParseError as error:
        raise QueryError(f"line 1:1: mismatched input: {error}") from None
    referenced: dict[tuple[str, str], Table] = {}
    for ref in tree.find_all(exp.Table):
        if ref.name and ref.name in _cte_names(tree):
            continue
        key = ((ref.db or database or "").lower(), ref.name.lower())
        table = tables.get(key)
        if table is None:
            raise QueryError(
                f"TABLE_NOT_FOUND: line 1:1: Table 'awsdatacatalog.{key[0]}.{key[1]}' does not exist"
            )
        referenced[key] = table
    connection = duckdb.connect()
    scanned = partitions_read = files_read = 0
    schema: dict[str, object] = {}
    for (db, name), table in referenced.items():
        kept = _pruned(table, _partition_filters(tree, table), connection)
        scanned += sum(p.stat().st_size for part in kept for p in part.files)
        partitions_read += len(kept)
        files_read += sum(len(part.files) for part in kept)
        connection.execute(f"CREATE SCHEMA IF NOT EXISTS {_q(db)}")
        connection.execute(f"CREATE VIEW {_q(db)}.{_q(name)} AS {table.view_sql(kept)}")
        if db == (database or "").lower():
            connection.execute(f"CREATE VIEW main.{_q(name)} AS SELECT * FROM {_q(db)}.{_q(name)}")
        types = {n: _trino_type(t) for n, t in [*table.columns, *table.partition_keys]}
        types |= {PATH_COLUMN: "varchar", SIZE_COLUMN: "bigint"}
        tables_of = schema.setdefault(db, {})
        assert isinstance(tables_of, dict)
        tables_of[name] = types
    try:
        typed = annotate_types(qualify(tree, schema=schema, dialect="trino", db=database), schema=schema)
        text = typed.sql("duckdb")
    except sqlglot.errors.SqlglotError as error:
        raise QueryError(f"SYNTAX_ERROR: {error}") from None
    try:
        cursor = connection.execute(text)
        description = cursor.description or []
        rows = cursor.fetchall()
    except duckdb.Error as error:
        raise QueryError(f"GENERIC_USER_ERROR: {error}") from None
    finally:
        connection.close()
    columns = [(d[0], _athena_type(str(d[1]))) for d in description]
    printed = [[_athena_text(v) for v in row] for row in rows]
    return QueryResult(columns, printed, scanned, partitions_read, files_read)


def _cte_names(tree: exp.Expr) -> set[str]:
    return {cte.alias for cte in tree.find_all(exp.CTE)}


def _partition_filters(tree: exp.Expr, table: Table) -> list[exp.Expr]:
    """The WHERE conjuncts, of every SELECT reading ``table`` directly, that refer to its partition
    keys alone (what Athena prunes partitions with)."""
    keys = {n.lower() for n, _ in table.partition_keys}
    filters: list[exp.Expr] = []
    for select in tree.find_all(exp.Select):
        source = select.args.get("from_") or select.args.get("from")
        if (
            source is None
            or not isinstance(source.this, exp.Table)
            or source.this.name.lower() != table.name.lower()
        ):
            continue
        where = select.args.get("where")
        if where is None:
            continue
        for conjunct in where.this.flatten() if isinstance(where.this, exp.And) else [where.this]:
            names = {c.name.lower() for c in conjunct.find_all(exp.Column)}
            if names and names <= keys:
                filters.append(conjunct)
    return filters


def _pruned(table: Table, filters: Sequence[exp.Expr], connection: Any) -> list[Partition]:
    partitions = table.partitions()
    if not filters or not table.partition_keys:
        return partitions
    names = [n for n, _ in table.partition_keys]
    rows = [[i, *(p.values[n] for n in names)] for i, p in enumerate(partitions)]
    types = ["BIGINT"] + [_duck_type(t) for _, t in table.partition_keys]
    values = _values_table(rows, ["_i", *names], types)
    condition = " AND ".join(
        f"({sqlglot.transpile(f.sql('trino'), read='trino', write='duckdb')[0]})" for f in filters
    )
    try:
        kept = connection.execute(f"SELECT _i FROM ({values}) WHERE {condition}").fetchall()
    except duckdb.Error as error:
        raise QueryError(f"GENERIC_USER_ERROR: partition filter: {error}") from None
    return [partitions[i] for (i,) in kept]


def _athena_type(duck: str) -> str:
    duck = duck.upper()
    if duck in ("BIGINT", "HUGEINT", "NUMBER"):
        return "bigint"
    if duck in ("INTEGER", "INT"):
        return "integer"
    if duck in ("DOUBLE", "FLOAT"):
        return "double"
    if duck == "BOOLEAN" or duck == "BOOL":
        return "boolean"
    if duck == "DATE":
        return "date"
    if duck.startswith("TIMESTAMP"):
        return "timestamp"
    if duck.startswith("DECIMAL"):
        return "decimal"
    if duck.endswith("[]") or duck.startswith("LIST"):
        return "array"
    return "varchar"


def _athena_text(value: Any) -> str | None:
    """A value as Athena prints it in results (CSV and GetQueryResults alike)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, list):
        return "[" + ", ".join("null" if v is None else str(_athena_text(v)) for v in value) + "]"
    return str(value)


def result_csv(result: QueryResult) -> bytes:
    """The CSV Athena writes to the output location: a header row, every value double-quoted, NULL as
    an empty field."""

    def quote(text: str) -> str:
        return '"' + text.replace('"', '""') + '"'

    lines = [",".join(quote(name) for name, _ in result.columns)]
    lines += [",".join("" if v is None else quote(v) for v in row) for row in result.rows]
    return ("\n".join(lines) + "\n").encode()
