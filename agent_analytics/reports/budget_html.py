"""The dashboard's budgets section: a bar per budget, like the goals' progress bars."""

from __future__ import annotations

from html import escape

from agent_analytics.metrics.budget_text import budget_forecast, budget_label, budget_status, budget_used, budgets_problem

# the bar's colour and the status badge's kind per status
LOOKS = {"on_track": ("on", "good"), "forecast_over": ("warn", "warn"), "exceeded": ("off", "bad")}
CSS = (".budget .track{position:relative} .goal .fill.warn{background:#f59e0b}"
       " .budget .forecast{position:absolute;top:0;height:12px;border-right:2px dashed #1e293b}")


def budgets_html(doc: dict, svgs: dict[str, str]) -> str:
    """A bar per budget: the month's spend in percent of the budget, up to 100% (green on track,
    amber when the forecast is over, red once spent), a dashed mark at the forecast (up to 100%);
    spend, forecast and the days left at the run rate in words below it."""
    out = [f"<p>{escape(doc['budgets']['month'])} to date, company time zone {escape(doc['budgets']['time_zone'])}.</p>"]
    if budgets_problem(doc):
        out.append(f'<p class="note">{escape(budgets_problem(doc))}</p>')
    for b in doc["budgets"]["items"]:
        fill, kind = LOOKS[b["status"]]
        spent, forecast = (max(0.0, min(b[key], 100.0)) for key in ("percent_used", "forecast_pct"))
        out.append(
            f'<div class="goal budget" data-budget="{escape(b["name"])}"><span><b>{escape(budget_label(b))}</b></span>'
            f'<div class="track"><div class="fill {fill}" style="width:{spent:.1f}%"></div>'
            f'<div class="forecast" style="width:{forecast:.1f}%"></div></div>'
            f'<span class="status {kind}">{escape(budget_status(b))}</span>'
            f'<span class="detail">{escape(budget_used(b))}; {escape(budget_forecast(b))}'
            f'{"; " + escape(b["description"]) if b["description"] else ""}</span></div>'
        )
    return "".join(out)
