"""The PDF of a scheduled report (reportlab): summary, top agents, then the dashboard's charts.

Text is real PDF text (standard Helvetica), so the figures can be searched and extracted.
"""

from __future__ import annotations

import io
from datetime import datetime, timezone
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.platypus import (
    Image,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from agent_analytics.deployments.render import summary_table
from agent_analytics.metrics.budget_text import budget_lines, budgets_heading, budgets_problem
from agent_analytics.metrics.formatting import count, duration, money, ms, percent
from agent_analytics.reports import charts as chart_lib
from agent_analytics.reports.summary import goal_lines, goals_problem, summary_figures, top_agents

SECTION_TITLES = {
    "engagement": "User engagement",
    "performance": "Agent performance",
    "cost": "Cost analysis",
    "tokens": "Token usage",
    "health": "System health",
    "users": "Users",
}
CHART_WIDTH = 17 * cm
TABLE_STYLE = TableStyle(
    [
        ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 9),
        ("FONT", (0, 1), (-1, -1), "Helvetica", 9),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e2e8f0")),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#cbd5e1")),
        ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
    ]
)


def _table(rows: list[list[str]], widths: list[float] | None = None, text_columns: int = 1) -> Table:
    """A table whose first `text_columns` columns are left-aligned text, the rest numbers."""
    table = Table(rows, colWidths=widths, hAlign="LEFT", repeatRows=1)
    table.setStyle(TABLE_STYLE)
    table.setStyle([("ALIGN", (0, 0), (text_columns - 1, -1), "LEFT")])
    return table


def _chart(figure) -> Image:
    png = chart_lib.to_png(figure)
    width, height = figure.get_size_inches()
    return Image(io.BytesIO(png), width=CHART_WIDTH, height=CHART_WIDTH * height / width)


def render_pdf(title: str, doc: dict, previous_doc: dict) -> bytes:
    """The report as PDF bytes."""
    styles = getSampleStyleSheet()
    period = doc["period"]
    scope = ", ".join(doc["scope"]["agents"]) if doc["scope"]["agents"] else "all agents"
    story = [
        Paragraph(escape(title), styles["Title"]),
        Paragraph(
            escape(f"{period['start_date']} to {period['end_date']} ({doc['time_zone']}), {scope}"
                   f"{', the last day so far' if period['partial'] else ''}. Compared with the previous period, "
                   f"{previous_doc['period']['start_date']} to {previous_doc['period']['end_date']}."),
            styles["Normal"],
        ),
        Spacer(1, 0.4 * cm),
        Paragraph("Summary", styles["Heading2"]),
        _table([["Metric", "Value", "Change vs previous period"]]
               + [[f.label, f.value, f.change] for f in summary_figures(doc, previous_doc)], [6 * cm, 4 * cm, 5 * cm]),
        Paragraph("Top agents", styles["Heading2"]),
        _table(
            [["#", "Agent", "Sessions", "Messages", "Cost", "Error rate", "Avg response", "Avg session"]]
            + [[str(i), a["agent_label"], count(a["sessions"]), count(a["messages"]), money(a["cost_usd"]),
                percent(a["error_rate_pct"]), ms(a["avg_response_time_ms"]), duration(a["avg_session_duration_ms"])]
               for i, a in enumerate(top_agents(doc), 1)],
            text_columns=2,
        ),
    ]
    if doc["users"]["top_users"]["by_messages"]:
        story += [Paragraph("Top users", styles["Heading2"]), _table(
            [["#", "User", "Messages", "Sessions", "Errors", "Cost"]]
            + [[str(r["rank"]), r["user_id"], count(r["messages"]), count(r["sessions"]), count(r["errors"]),
                money(r["cost_usd"])] for r in doc["users"]["top_users"]["by_messages"]],
            text_columns=2,
        )]
    for heading, header, rows, problem in (
        ("Goals", ["Goal", "Status", "Target", "Value"], goal_lines(doc), goals_problem(doc)),
        (budgets_heading(doc), ["Budget", "Status", "Spent", "Forecast"], budget_lines(doc), budgets_problem(doc)),
    ):
        if rows:
            story += [Paragraph(heading, styles["Heading2"]),
                      # long targets and values wrap in their cells
                      _table([header] + [[Paragraph(escape(cell), styles["BodyText"]) for cell in row] for row in rows],
                             [4 * cm, 2.2 * cm, 4.4 * cm, 6.4 * cm], text_columns=4)]
        if problem:
            story.append(Paragraph(escape(problem), styles["Italic"]))
    if doc["deployments"]["items"]:
        story += [Paragraph("Deployments", styles["Heading2"]),
                  _table([[Paragraph(escape(cell), styles["BodyText"]) for cell in row]
                          for row in summary_table(doc["deployments"]["items"])], text_columns=3)]
    if doc.get("bills"):
        from agent_analytics.bills import BILL_HEADERS, bill_cells

        story += [Paragraph("Provider bills", styles["Heading2"]),
                  _table([BILL_HEADERS] + [bill_cells(line) for line in doc["bills"]], text_columns=3)]
    if doc["note"]:
        story.append(Paragraph(escape(doc["note"]), styles["Italic"]))
    charts = chart_lib.charts(doc)
    for section, heading in SECTION_TITLES.items():
        figures = [c.figure for c in charts.values() if c.section == section]
        if figures:
            story.append(KeepTogether([Paragraph(heading, styles["Heading2"]), _chart(figures[0])]))
            story += [_chart(f) for f in figures[1:]]
    buffer = io.BytesIO()
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    def footer(canvas, document) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 8)
        canvas.drawString(2 * cm, 1.2 * cm, f"agent-analytics - {title} - generated {generated} - page {document.page}")
        canvas.restoreState()

    SimpleDocTemplate(
        buffer, pagesize=A4, title=title, author="agent-analytics",
        leftMargin=2 * cm, rightMargin=2 * cm, topMargin=1.8 * cm, bottomMargin=2 * cm,
    ).build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()
