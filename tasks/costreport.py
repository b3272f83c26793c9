"""The cost and outcome report as a reader sees it: Markdown (and the terminal) and HTML.

Both renderings are built from the same blocks, so they carry the same figures: totals and
savings first (estimate against actual), cost per day, one table per job and model, and the
failures by reason, with rejected documents and failed requests counted apart. Simulated
figures are never mixed into real ones: they get their own totals, their own rows and a mark.

Money is US dollars: cents from $1 up, 4 decimals below $1, and "<$0.0001" for a cost too small
to show (never a misleading $0.0000). The HTML page is self-contained (inline CSS and SVG, no
script, no web fonts) and prints on A4 or Letter.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Literal

import polars as pl

Kind = Literal["real", "simulated"]
Align = Literal["left", "right"]

MONEY_RULE = (
    "Amounts in US dollars: to the cent from $1 up, to 4 decimals below $1 (<$0.0001 when smaller)."
)
KIND_LABEL: dict[Kind, str] = {"real": "OpenAI (billed)", "simulated": "SIMULATED (not billed)"}


def money(value: float | None) -> str:
    """A dollar amount as a reader expects it: `$1,234.56`, `$0.0714`, `<$0.0001`."""
    if value is None or math.isnan(value):
        return "-"
    sign = "-" if value < 0 else ""
    amount = abs(value)
    if amount == 0:
        return "$0.00"
    if round(amount, 4) >= 1:
        return f"{sign}${amount:,.2f}"
    if amount < 0.00005:
        return f"{sign}<$0.0001"
    return f"{sign}${amount:.4f}"


def percent(part: float | None, whole: float | None) -> str:
    """`part` as a whole-number share of `whole`, or a dash when there is nothing to divide."""
    if part is None or not whole:
        return "-"
    return f"{100 * part / whole:.0f}%"


def count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


@dataclass(frozen=True, kw_only=True)
class Totals:
    """The headline figures of one kind of request (real or simulated)."""

    kind: Kind
    requests: int
    succeeded: int
    failed: int
    documents: int
    batch: float
    standard: float
    saved: float
    estimate: float
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    reasoning_tokens: int


def _right(n: int) -> list[Align]:
    return ["right"] * n


def _left(n: int) -> list[Align]:
    return ["left"] * n


def _sum_int(df: pl.DataFrame, column: str) -> int:
    return int(df[column].fill_null(0).sum()) if column in df.columns else 0


def _sum_float(df: pl.DataFrame, column: str) -> float:
    return float(df[column].fill_null(0).sum()) if column in df.columns else 0.0


def _totals(df: pl.DataFrame, *, kind: Kind) -> Totals:
    return Totals(
        kind=kind,
        requests=_sum_int(df, "requests"),
        succeeded=_sum_int(df, "succeeded"),
        failed=_sum_int(df, "failed"),
        documents=_sum_int(df, "documents"),
        batch=_sum_float(df, "batch_cost_usd"),
        standard=_sum_float(df, "standard_cost_usd"),
        saved=_sum_float(df, "savings_usd"),
        estimate=_sum_float(df, "estimated_cost_usd"),
        input_tokens=_sum_int(df, "input_tokens"),
        cached_tokens=_sum_int(df, "cached_tokens"),
        output_tokens=_sum_int(df, "output_tokens"),
        reasoning_tokens=_sum_int(df, "reasoning_tokens"),
    )


def _simulated(df: pl.DataFrame) -> pl.Series:
    if "simulated" not in df.columns:
        return pl.Series([False] * df.height, dtype=pl.Boolean)
    return df["simulated"].fill_null(False)


def totals_by_kind(daily: pl.DataFrame) -> list[Totals]:
    """One `Totals` per kind present: real first, then simulated."""
    if daily.is_empty():
        return []
    flags = _simulated(daily)
    found = []
    for kind, mask in (("real", ~flags), ("simulated", flags)):
        part = daily.filter(mask)
        if not part.is_empty():
            found.append(_totals(part, kind=kind))  # type: ignore[arg-type]
    return found


# -- the blocks both renderings are made of ----------------------------------------------------


@dataclass(kw_only=True)
class Table:
    columns: list[str]
    align: list[Align]
    rows: list[list[str]] = field(default_factory=list)
    row_kinds: list[Kind] = field(default_factory=list)
    nowrap: set[int] = field(default_factory=set)
    css: str = ""


@dataclass(kw_only=True)
class Section:
    heading: str
    level: Literal[2, 3] = 2
    simulated: bool = False
    intro: str = ""
    table: Table | None = None
    note: str = ""


@dataclass(kw_only=True)
class Report:
    title: str
    warning: str
    period: str
    notes: list[str]
    totals: list[Totals]
    per_day: pl.DataFrame
    sections: list[Section]


def _simulated_warning(daily: pl.DataFrame) -> str:
    """What share of the report the simulator answered, in words; empty when none."""
    if daily.is_empty():
        return ""
    flags = _simulated(daily)
    if not flags.any():
        return ""
    n, total = _sum_int(daily.filter(flags), "requests"), _sum_int(daily, "requests")
    return (
        f"{n:,} of {total:,} requests were answered by overnight's simulator (the embedded "
        "local Batch API), not by a model: those rows have simulated = true, are not real "
        "results, and their costs are only what OpenAI would have charged."
    )


def _totals_table(totals: list[Totals]) -> Table:
    table = Table(
        columns=[
            "Answered by",
            "Requests",
            "Failed",
            "Batch cost",
            "Standard API cost",
            "Saved",
            "Estimate at submit",
            "Actual / estimate",
        ],
        align=["left", *_right(7)],
        css="totals",
    )
    for t in totals:
        table.rows.append(
            [
                KIND_LABEL[t.kind],
                count(t.requests),
                count(t.failed),
                money(t.batch),
                money(t.standard),
                f"{money(t.saved)} ({percent(t.saved, t.standard)})",
                money(t.estimate),
                percent(t.batch, t.estimate),
            ]
        )
        table.row_kinds.append(t.kind)
    return table


def per_day(daily: pl.DataFrame) -> pl.DataFrame:
    """Requests and money per run date and kind, in date order (the chart's figures)."""
    columns = ["requests", "failed", "batch_cost_usd", "standard_cost_usd", "savings_usd"]
    columns.append("estimated_cost_usd")
    if daily.is_empty():
        return pl.DataFrame(
            schema={"run_date": pl.String, "simulated": pl.Boolean}
            | {c: pl.Float64 for c in columns}
        )
    return (
        daily.with_columns(
            pl.col("run_date").cast(pl.String), simulated=_simulated(daily).alias("simulated")
        )
        .group_by("run_date", "simulated")
        .agg(pl.col(c).fill_null(0).sum() for c in columns)
        .sort("run_date", "simulated")
    )


def _per_day_table(days: pl.DataFrame) -> Table:
    mixed = days["simulated"].n_unique() > 1 if not days.is_empty() else False
    table = Table(
        columns=[
            "Day",
            *(["Answered by"] if mixed else []),
            "Requests",
            "Failed",
            "Batch cost",
            "Standard API cost",
            "Saved",
            "Estimate at submit",
        ],
        align=["left", *_left(1 if mixed else 0), *_right(6)],
        nowrap={0, 1} if mixed else {0},
    )
    for row in days.iter_rows(named=True):
        kind: Kind = "simulated" if row["simulated"] else "real"
        table.rows.append(
            [
                row["run_date"],
                *([KIND_LABEL[kind]] if mixed else []),
                count(int(row["requests"])),
                count(int(row["failed"])),
                money(row["batch_cost_usd"]),
                money(row["standard_cost_usd"]),
                money(row["savings_usd"]),
                money(row["estimated_cost_usd"]),
            ]
        )
        table.row_kinds.append(kind)
    return table


def _job_sections(daily: pl.DataFrame) -> list[Section]:
    frame = daily.with_columns(simulated=_simulated(daily))
    sections = [Section(heading="Per day, job and model")]
    for (job, model, simulated), rows in frame.group_by(
        "job", "model", "simulated", maintain_order=True
    ):
        kind: Kind = "simulated" if simulated else "real"
        t = _totals(rows, kind=kind)
        table = Table(
            columns=[
                "Day",
                "Documents",
                "Requests",
                "Failed",
                "Batch cost",
                "Standard API cost",
                "Saved",
                "Estimate at submit",
            ],
            align=["left", *_right(7)],
            nowrap={0},
        )
        for row in rows.sort("run_date").iter_rows(named=True):
            table.rows.append(
                [
                    str(row["run_date"]),
                    count(row["documents"]),
                    count(row["requests"]),
                    count(row["failed"]),
                    money(row["batch_cost_usd"]),
                    money(row["standard_cost_usd"]),
                    money(row["savings_usd"]),
                    money(row["estimated_cost_usd"]),
                ]
            )
            table.row_kinds.append(kind)
        sections.append(
            Section(
                heading=f"{job} · {model}" + (" · SIMULATED" if simulated else ""),
                level=3,
                simulated=bool(simulated),
                table=table,
                note=(
                    f"Total {money(t.batch)} at batch prices for {t.requests:,} requests "
                    f"({money(t.standard)} on the standard API, {money(t.saved)} saved). "
                    f"Tokens: {t.input_tokens:,} input ({t.cached_tokens:,} cached), "
                    f"{t.output_tokens:,} output ({t.reasoning_tokens:,} reasoning)."
                ),
            )
        )
    return sections


DOCUMENT_STAGES = ("load", "build")


def _failure_sections(failures: pl.DataFrame) -> list[Section]:
    """Failures by reason, one table per job: documents and requests counted apart."""
    section = Section(
        heading="Failures by reason",
        intro=(
            "Rejected documents were refused before any request was made (stage load or "
            "build): they were not sent and cost nothing. Failed requests were sent and got no "
            "usable answer; their cost is in the figures above when OpenAI billed them."
        ),
    )
    if failures.is_empty():
        section.intro = "No rejected documents and no failed requests in this period."
        return [section]
    sections = [section]
    for (job,), rows in failures.group_by("job", maintain_order=True):
        table = Table(
            columns=["Day", "Stage", "Reason", "Rejected documents", "Failed requests", "Retried"],
            align=["left", "left", "left", "right", "right", "left"],
            nowrap={0, 2},
        )
        for row in rows.iter_rows(named=True):
            is_document = row["stage"] in DOCUMENT_STAGES
            table.rows.append(
                [
                    str(row["run_date"]),
                    str(row["stage"]),
                    str(row["code"]),
                    count(row["documents"]) if is_document else "-",
                    "-" if is_document else count(row["requests"]),
                    "next run" if row["retryable"] else "no",
                ]
            )
        sections.append(Section(heading=str(job), level=3, table=table))
    return sections


DAILY_COLUMNS: dict[str, type[pl.DataType]] = {
    "run_date": pl.String,
    "job": pl.String,
    "model": pl.String,
    "simulated": pl.Boolean,
    "documents": pl.Int64,
    "requests": pl.Int64,
    "succeeded": pl.Int64,
    "failed": pl.Int64,
    "input_tokens": pl.Int64,
    "cached_tokens": pl.Int64,
    "output_tokens": pl.Int64,
    "reasoning_tokens": pl.Int64,
    "batch_cost_usd": pl.Float64,
    "standard_cost_usd": pl.Float64,
    "savings_usd": pl.Float64,
    "estimated_cost_usd": pl.Float64,
    "pricing_as_of": pl.String,
}
FAILURE_COLUMNS: dict[str, type[pl.DataType]] = {
    "run_date": pl.String,
    "job": pl.String,
    "stage": pl.String,
    "code": pl.String,
    "retryable": pl.Boolean,
    "documents": pl.Int64,
    "requests": pl.Int64,
}


def _complete(df: pl.DataFrame, columns: dict[str, type[pl.DataType]]) -> pl.DataFrame:
    """`df` with every column the report reads (missing ones null), e.g. from older files."""
    if df.width == 0:
        return pl.DataFrame(schema=columns)
    missing = [
        pl.lit(None, dtype).alias(name) for name, dtype in columns.items() if name not in df.columns
    ]
    return df.with_columns(missing) if missing else df


def build(parts: dict[str, pl.DataFrame], *, title: str) -> Report:
    """The report's blocks, from `analytics.report`'s frames."""
    daily, failures = (
        _complete(parts["daily"], DAILY_COLUMNS),
        _complete(parts["failures"], FAILURE_COLUMNS),
    )
    totals = totals_by_kind(daily)
    notes = [MONEY_RULE]
    if "pricing_as_of" in daily.columns and not daily.is_empty():
        dates = sorted(
            {d for v in daily["pricing_as_of"].drop_nulls().to_list() for d in str(v).split(", ")}
        )
        if dates:
            notes.append(f"Prices as of {', '.join(dates)} (overnight's pricing table).")
    notes.append(
        "Estimate at submit is an upper bound: every request at its maximum output length."
    )
    period = "No runs in this period."
    if not daily.is_empty():
        run_dates = sorted(str(d) for d in daily["run_date"].to_list())
        rejected = 0
        if not failures.is_empty() and "documents" in failures.columns:
            rejected = int(
                failures.filter(pl.col("stage").is_in(DOCUMENT_STAGES))["documents"].sum()
            )
        all_requests = sum(t.requests for t in totals)
        period = (
            f"Runs from {run_dates[0]} to {run_dates[-1]}: {sum(t.documents for t in totals):,} documents "
            f"sent in {all_requests:,} requests; {rejected:,} documents rejected before any "
            "request."
        )
    days = per_day(daily)
    sections = [
        Section(heading="Totals", table=_totals_table(totals)),
        Section(heading="Cost per day", table=_per_day_table(days)),
        *_job_sections(daily),
    ]
    if daily.is_empty():
        sections = []
    sections += _failure_sections(failures)
    return Report(
        title=title,
        warning=_simulated_warning(daily),
        period=period,
        notes=notes,
        totals=totals,
        per_day=days,
        sections=sections,
    )


# -- Markdown ------------------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def _md_table(table: Table) -> list[str]:
    rule = {"left": ":---", "right": "---:"}
    lines = [
        "| " + " | ".join(table.columns) + " |",
        "|" + "|".join(rule[a] for a in table.align) + "|",
    ]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
    return lines


def markdown(report: Report) -> str:
    """The report as Markdown; rendered by rich it fits a 100-column terminal."""
    lines = [f"# {report.title}", ""]
    if report.warning:
        lines += [f"> **SIMULATED** — {report.warning}", ""]
    lines += [report.period, ""]
    lines += [f"- {note}" for note in report.notes] + [""]
    for section in report.sections:
        lines += ["#" * section.level + " " + section.heading, ""]
        if section.intro:
            lines += [section.intro, ""]
        if section.table is not None:
            lines += [*_md_table(section.table), ""]
        if section.note:
            lines += [section.note, ""]
    return "\n".join(lines)


# -- HTML ----------------------------------------------------------------------------------------

_CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
 color:#1b1f24;margin:0;background:#fff;font-size:15px;line-height:1.45}
main{max-width:1180px;margin:0 auto;padding:24px 28px}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:19px;margin:28px 0 10px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
h3{font-size:16px;margin:20px 0 6px}
p{margin:6px 0}
.meta{color:#57606a;font-size:13px}
.meta p{margin:2px 0}
.banner{background:#fff3cd;border:3px solid #b7791f;padding:10px 14px;margin:14px 0;
 font-size:15px}
.banner strong{font-size:17px;letter-spacing:.05em}
.sim-tag{display:inline-block;background:#b7791f;color:#fff;font-weight:700;font-size:12px;
 letter-spacing:.06em;padding:1px 6px;border-radius:3px;vertical-align:middle}
.cards{display:grid;grid-template-columns:repeat(5,minmax(0,1fr));gap:12px;margin:10px 0 4px}
.card{border:1px solid #d0d7de;border-radius:6px;padding:10px 12px;break-inside:avoid}
.card .label{font-size:13px;color:#57606a}
.card .value{font-size:24px;font-weight:650;font-variant-numeric:tabular-nums;
 white-space:nowrap}
.card .sub{font-size:12px;color:#57606a}
.kind{margin:14px 0 0;font-weight:650}
.simulated .card{border:2px dashed #b7791f;background:#fffaf0}
table{border-collapse:collapse;margin:6px 0;font-variant-numeric:tabular-nums;font-size:14px}
th,td{border-bottom:1px solid #d8dee4;padding:4px 10px;vertical-align:top}
th{background:#f6f8fa;font-weight:600;border-bottom:2px solid #afb8c1;vertical-align:bottom}
th.r,td.r{text-align:right}
th.l,td.l{text-align:left}
td.r,td.nw{white-space:nowrap}
tr.simulated td{background:#fffaf0}
.note{font-size:13px;color:#57606a}
figure{margin:6px 0}
figcaption{font-size:13px;color:#57606a}
svg{display:block;width:100%;height:auto;max-width:1000px}
.job{break-inside:avoid}
@media screen and (max-width:800px){.cards{grid-template-columns:repeat(2,minmax(0,1fr))}
 main{padding:12px}}
@page{margin:12mm}
@media print{
 body{font-size:10pt}
 main{max-width:none;padding:0}
 h1{font-size:16pt}
 h2{font-size:13pt;margin-top:14pt;break-after:avoid}
 h3{font-size:11pt;break-after:avoid}
 .cards{grid-template-columns:repeat(5,minmax(0,1fr));gap:6pt}
 .card .value{font-size:14pt}
 table{font-size:8.5pt;width:100%}
 th,td{padding:2pt 4pt}
 thead{display:table-header-group}
 tr,figure,.banner,.cards{break-inside:avoid}
 .banner,.sim-tag,tr.simulated td,.simulated .card,th{-webkit-print-color-adjust:exact;
  print-color-adjust:exact}
}
"""


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _html_table(table: Table) -> str:
    cls = {"left": "l", "right": "r"}
    head = "".join(
        f'<th class="{cls[a]}">{_esc(c)}</th>'
        for c, a in zip(table.columns, table.align, strict=True)
    )
    body = []
    for i, row in enumerate(table.rows):
        kind = table.row_kinds[i] if i < len(table.row_kinds) else "real"
        cells = "".join(
            f'<td class="{cls[table.align[j]]}{" nw" if j in table.nowrap else ""}">'
            + (
                '<span class="sim-tag">SIMULATED</span> not billed'
                if value == KIND_LABEL["simulated"]
                else _esc(value)
            )
            + "</td>"
            for j, value in enumerate(row)
        )
        body.append(f'<tr class="{kind}">{cells}</tr>')
    css = f' class="{table.css}"' if table.css else ""
    return f"<table{css}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _cards(t: Totals) -> str:
    def card(label: str, value: str, sub: str, key: str) -> str:
        return (
            f'<div class="card" data-figure="{key}"><div class="label">{_esc(label)}</div>'
            f'<div class="value">{_esc(value)}</div><div class="sub">{_esc(sub)}</div></div>'
        )

    heading = (
        '<p class="kind"><span class="sim-tag">SIMULATED</span> Answered by overnight\'s '
        "simulator: what OpenAI would have charged, not a bill</p>"
        if t.kind == "simulated"
        else '<p class="kind">Answered by OpenAI: billed</p>'
    )
    return (
        f'<section class="{t.kind}" data-kind="{t.kind}">{heading}<div class="cards">'
        + card("Batch cost", money(t.batch), "what the runs cost at batch prices", "batch")
        + card("Standard API cost", money(t.standard), "the same usage, synchronous", "standard")
        + card("Saved", money(t.saved), f"{percent(t.saved, t.standard)} of standard", "saved")
        + card(
            "Estimate at submit",
            money(t.estimate),
            f"actual is {percent(t.batch, t.estimate)} of the estimate",
            "estimate",
        )
        + card(
            "Requests",
            count(t.requests),
            f"{t.succeeded:,} succeeded, {t.failed:,} failed",
            "requests",
        )
        + "</div></section>"
    )


def _nice_step(peak: float) -> float:
    raw = peak / 5
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if factor * magnitude >= raw:
            return factor * magnitude
    return 10 * magnitude


SERIES = (
    ("estimated_cost_usd", "Estimate at submit", "#ffffff", "#57606a"),
    ("standard_cost_usd", "Standard API cost", "#afb8c1", "#8c959f"),
    ("batch_cost_usd", "Batch cost (actual)", "#1f6feb", "#1858c4"),
)


def chart(days: pl.DataFrame, *, simulated: bool) -> str:
    """An inline SVG bar chart of cost per day: estimate, standard and batch, with amounts."""
    by_day = (
        days.group_by("run_date")
        .agg(pl.col(c).sum() for c, *_ in SERIES)
        .sort("run_date")
        .iter_rows(named=True)
    )
    rows = list(by_day)
    peak = max([r[c] for r in rows for c, *_ in SERIES] + [0.0])
    step = _nice_step(peak) if peak > 0 else 0.01
    top = step * max(1, math.ceil(peak / step - 1e-9))
    width, left, right, plot_top, plot_h = 1000, 92, 16, 44, 260
    plot_w = width - left - right
    n = max(1, len(rows))
    group = plot_w / n
    bar = min(44.0, group * 0.8 / len(SERIES))
    rotate = group < 110
    every = math.ceil(n / 16)  # a date label on every bar group up to 16 days
    height = plot_top + plot_h + (86 if rotate else 56)
    base = plot_top + plot_h
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="Cost per day in US dollars" font-family="inherit" '
        f'font-size="13">'
    ]
    # Legend
    x = left
    for _, label, fill, stroke in SERIES:
        dash = ' stroke-dasharray="4 2"' if fill == "#ffffff" else ""
        out.append(
            f'<rect x="{x}" y="10" width="14" height="14" fill="{fill}" stroke="{stroke}"{dash}/>'
            f'<text x="{x + 20}" y="22">{_esc(label)}</text>'
        )
        x += 30 + 8 * len(label)
    if simulated:
        out.append(
            f'<text x="{width - right}" y="22" text-anchor="end" font-weight="700" '
            f'fill="#8a5a00">SIMULATED: not billed</text>'
        )
    # Axis, ticks and grid
    ticks = round(top / step)
    for i in range(ticks + 1):
        value = step * i
        y = base - plot_h * value / top
        out.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{"#57606a" if i == 0 else "#e1e4e8"}"/>'
            f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{money(value)}</text>'
        )
    out.append(
        f'<line x1="{left}" x2="{left}" y1="{plot_top}" y2="{base}" stroke="#57606a"/>'
        f'<text transform="translate(14 {plot_top + plot_h / 2}) rotate(-90)" '
        f'text-anchor="middle">US dollars</text>'
    )
    # Bars with their amounts
    for k, row in enumerate(rows):
        gx = left + k * group + (group - bar * len(SERIES)) / 2
        for j, (column, label, fill, stroke) in enumerate(SERIES):
            value = float(row[column])
            h = plot_h * value / top if top else 0
            bx = gx + j * bar
            dash = ' stroke-dasharray="4 2"' if fill == "#ffffff" else ""
            out.append(
                f'<rect x="{bx:.1f}" y="{base - h:.1f}" width="{bar - 3:.1f}" height="{h:.1f}" '
                f'fill="{fill}" stroke="{stroke}"{dash}>'
                f"<title>{_esc(str(row['run_date']))} {_esc(label)}: {money(value)}</title></rect>"
            )
            cx = bx + (bar - 3) / 2
            if bar >= 30:
                out.append(
                    f'<text x="{cx:.1f}" y="{base - h - 5:.1f}" text-anchor="middle" '
                    f'font-size="11">{money(value)}</text>'
                )
            elif bar >= 9:
                out.append(
                    f'<text transform="translate({cx + 4:.1f} {base - h - 5:.1f}) rotate(-90)" '
                    f'font-size="10">{money(value)}</text>'
                )
        label_x = left + k * group + group / 2
        if k % every:
            continue
        if rotate:
            out.append(
                f'<text transform="translate({label_x:.1f} {base + 14}) rotate(-40)" '
                f'text-anchor="end">{_esc(str(row["run_date"]))}</text>'
            )
        else:
            out.append(
                f'<text x="{label_x:.1f}" y="{base + 20}" text-anchor="middle">'
                f"{_esc(str(row['run_date']))}</text>"
            )
    out.append(
        f'<text x="{left + plot_w / 2}" y="{height - 8}" text-anchor="middle">'
        "Run date (UTC)</text></svg>"
    )
    return "".join(out)


def _figure(report: Report) -> str:
    """The chart of real costs; of simulated ones only when the report has nothing else."""
    days = report.per_day
    real = days.filter(~pl.col("simulated"))
    simulated = real.is_empty()
    caption = (
        "Cost per run date: the estimate made at submit (dashed), the standard API price of "
        "the same usage (grey) and the batch cost charged (blue)."
    )
    if simulated:
        caption += " SIMULATED: these are what OpenAI would have charged, not a bill."
    elif real.height < days.height:
        caption += " Simulated requests are left out of the chart (see the table)."
    return (
        "<figure>"
        + chart(days if simulated else real, simulated=simulated)
        + f"<figcaption>{_esc(caption)}</figcaption></figure>"
    )


def page(report: Report) -> str:
    """The report as one self-contained HTML page (inline CSS and SVG, no script)."""
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{_esc(report.title)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>{_esc(report.title)}</h1>",
    ]
    if report.warning:
        parts.append(
            f'<p class="banner" role="alert"><strong>SIMULATED</strong> — '
            f"{_esc(report.warning)}</p>"
        )
    parts.append(
        '<div class="meta">'
        + "".join(f"<p>{_esc(line)}</p>" for line in [report.period, *report.notes])
        + "</div>"
    )
    for section in report.sections:
        tag = f"h{section.level}"
        heading = _esc(section.heading)
        if section.simulated:
            heading = _esc(section.heading.removesuffix(" · SIMULATED"))
            heading += ' <span class="sim-tag">SIMULATED</span>'
        opening = '<section class="job">' if section.level == 3 else "<section>"
        parts.append(f"{opening}<{tag}>{heading}</{tag}>")
        if section.intro:
            parts.append(f"<p>{_esc(section.intro)}</p>")
        if section.heading == "Totals":
            parts.extend(_cards(t) for t in report.totals)
        elif section.heading == "Cost per day" and report.totals:
            parts.append(_figure(report))
        if section.table is not None and section.heading != "Totals":
            parts.append(_html_table(section.table))
        if section.note:
            parts.append(f'<p class="note">{_esc(section.note)}</p>')
        parts.append("</section>")
    parts.append("</main></body></html>")
    return "".join(parts)
