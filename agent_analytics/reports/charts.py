"""The dashboard's and reports' charts, drawn by matplotlib from one metrics document.

Each chart is a function of the document returning a Figure (or None when it would be
empty). The dashboard embeds them as inline SVG with text kept as text (readable, searchable,
no font files); the PDF embeds them as PNG. Axes carry their units.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import matplotlib

matplotlib.use("Agg")  # no display, before pyplot is imported anywhere

from matplotlib import pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

PALETTE = ("#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#64748b")
SIZE = (7.2, 3.0)
plt.rcParams.update(
    {
        "font.size": 9,
        "axes.titlesize": 10,
        "axes.titleweight": "bold",
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "svg.fonttype": "none",
        "svg.hashsalt": "agent-analytics",  # stable ids: same document, same file
    }
)


@dataclass(frozen=True)
class Chart:
    name: str
    section: str
    figure: Figure


def _figure(title: str) -> tuple[Figure, plt.Axes]:
    figure = Figure(figsize=SIZE, layout="constrained")
    axes = figure.add_subplot()
    axes.set_title(title, loc="left")
    return figure, axes


def _dates(rows: list[dict]) -> list[date]:
    return [date.fromisoformat(r["date"]) for r in rows]


def _date_axis(axes: plt.Axes) -> None:
    axes.xaxis.set_major_locator(MaxNLocator(8))
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: matplotlib.dates.num2date(value).strftime("%b %d")))


def _money_axis(axes: plt.Axes) -> None:
    axes.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"${v:,.2f}" if v < 10 else f"${v:,.0f}"))


def _hbars(title: str, labels: list[str], values: list[float], xlabel: str, fmt: Callable[[float], str]) -> Figure | None:
    if not labels:
        return None
    figure, axes = _figure(title)
    positions = range(len(labels))
    axes.barh(positions, values, color=PALETTE[0])
    axes.set_yticks(list(positions), labels)
    axes.invert_yaxis()
    axes.set_xlabel(xlabel)
    axes.grid(axis="y", visible=False)
    top = max(values) if values else 0
    for y, value in zip(positions, values, strict=True):
        axes.text(value + top * 0.01, y, fmt(value), va="center", fontsize=8)
    axes.set_xlim(0, (top or 1) * 1.18)
    return figure


def _share_bars(title: str, buckets: list[dict], xlabel: str) -> Figure | None:
    if not any(b["sessions"] for b in buckets):
        return None
    figure, axes = _figure(title)
    labels = [b["bucket"] for b in buckets]
    values = [b["share_pct"] for b in buckets]
    axes.bar(labels, values, color=PALETTE[0])
    for x, value in enumerate(values):
        axes.text(x, value, f"{value:.1f}%", ha="center", va="bottom", fontsize=8)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("share of sessions (%)")
    axes.grid(axis="x", visible=False)
    return figure


def _mark_deployments(axes: plt.Axes, doc: dict) -> None:
    """A dashed line at each deployment of the document (its local time), labelled with the
    version deployed."""
    zone = ZoneInfo(doc["time_zone"])
    for item in doc["deployments"]["items"]:
        moment = datetime.fromisoformat(item["deployed_at"].replace("Z", "+00:00")).astimezone(zone).replace(tzinfo=None)
        axes.axvline(moment, color=PALETTE[5], linestyle="--", linewidth=0.8)
        axes.annotate(item["version"], (moment, 1), xycoords=("data", "axes fraction"), fontsize=7, color=PALETTE[5],
                      rotation=90, ha="right", va="top")


def dau_trend(doc: dict) -> Figure | None:
    series = doc["engagement"]["series"]
    if not series:
        return None
    figure, axes = _figure("Active users per day")
    days = _dates(series)
    for key, label, color in (("mau", "MAU (30 d)", PALETTE[2]), ("wau", "WAU (7 d)", PALETTE[1]), ("dau", "DAU", PALETTE[0])):
        axes.plot(days, [d[key] for d in series], marker="o" if len(days) < 3 else None, label=label, color=color)
    axes.set_ylabel("users")
    axes.set_ylim(bottom=0)
    axes.legend(loc="upper left", fontsize=8, ncols=3)
    _mark_deployments(axes, doc)
    _date_axis(axes)
    return figure


def session_duration(doc: dict) -> Figure | None:
    return _share_bars("Session duration", doc["engagement"]["session_duration_distribution"], "session length")


def messages_per_session(doc: dict) -> Figure | None:
    return _share_bars("Messages per session", doc["engagement"]["messages_per_session_distribution"], "messages in the session")


def _seconds(ms: float | None) -> float:
    """Milliseconds as seconds; an hour with only failed messages has no time (a gap)."""
    return math.nan if ms is None else ms / 1000


def response_by_hour(doc: dict) -> Figure | None:
    hours = [h for h in doc["performance"]["hourly"] if h["messages"]]
    if not hours:
        return None
    figure, axes = _figure(f"Response time by hour of day ({doc['time_zone']})")
    x = [h["hour"] for h in hours]
    axes.plot(x, [_seconds(h["avg_response_time_ms"]) for h in hours], marker="o", label="average", color=PALETTE[0])
    axes.plot(x, [_seconds(h["p95_response_time_ms"]) for h in hours], marker="o", label="P95", color=PALETTE[3])
    axes.set_xlabel("hour of day")
    axes.set_ylabel("response time (s)")
    axes.set_xticks(range(0, 24, 2))
    axes.set_xlim(-0.5, 23.5)
    axes.set_ylim(bottom=0)
    axes.legend(loc="upper left", fontsize=8)
    return figure


def cost_by_provider(doc: dict) -> Figure | None:
    rows = doc["cost"]["by_provider"]
    return _hbars(
        "Cost by provider", [r["provider"] for r in rows], [r["cost_usd"] for r in rows], "cost (USD)",
        lambda v: f"${v:,.2f}",
    )


def cost_trend(doc: dict) -> Figure | None:
    days = doc["cost"]["by_day"]
    if not days:
        return None
    figure, axes = _figure("Cost per day")
    axes.bar(_dates(days), [d["cost_usd"] for d in days], color=PALETTE[1], width=0.8)
    axes.set_ylabel("cost (USD per day)")
    _money_axis(axes)
    _mark_deployments(axes, doc)
    _date_axis(axes)
    axes.grid(axis="x", visible=False)
    return figure


def cost_top_agents(doc: dict) -> Figure | None:
    rows = doc["cost"]["by_agent"][:5]
    return _hbars(
        "Cost per agent (top 5)", [r["agent_label"] for r in rows], [r["cost_usd"] for r in rows], "cost (USD)",
        lambda v: f"${v:,.2f}",
    )


def tokens_by_model(doc: dict) -> Figure | None:
    rows = doc["tokens"]["by_model"][:8]
    return _hbars(
        "Tokens by model", [r["model"] for r in rows], [r["total_tokens"] / 1e6 for r in rows], "tokens (millions)",
        lambda v: f"{v:,.2f}M",
    )


def tokens_by_agent(doc: dict) -> Figure | None:
    rows = doc["tokens"]["by_agent"]
    if not rows:
        return None
    figure, axes = _figure("Tokens by agent")
    labels = [r["agent_label"] for r in rows]
    prompt = [r["input_tokens"] / 1e6 for r in rows]
    completion = [r["output_tokens"] / 1e6 for r in rows]
    axes.barh(labels, prompt, color=PALETTE[0], label="prompt")
    axes.barh(labels, completion, left=prompt, color=PALETTE[1], label="completion")
    axes.invert_yaxis()
    axes.set_xlabel("tokens (millions)")
    axes.legend(loc="lower right", fontsize=8)
    axes.grid(axis="y", visible=False)
    return figure


def request_volume(doc: dict) -> Figure | None:
    days = doc["daily"]
    if not days:
        return None
    figure, axes = _figure("Requests and error rate per day")
    x = _dates(days)
    axes.bar(x, [d["messages"] for d in days], color=PALETTE[0], width=0.8, label="messages")
    axes.set_ylabel("messages per day")
    _date_axis(axes)
    axes.grid(axis="x", visible=False)
    rate = axes.twinx()
    rates = [float("nan") if d["error_rate"] is None else d["error_rate"] * 100 for d in days]  # a gap where no data
    rate.plot(x, rates, color=PALETTE[3], marker="o" if len(x) < 3 else None, label="error rate")
    rate.set_ylabel("error rate (%)")
    rate.set_ylim(bottom=0)
    rate.grid(False)
    rate.spines["right"].set_visible(True)
    handles = axes.get_legend_handles_labels()[0] + rate.get_legend_handles_labels()[0]
    axes.legend(handles, ["messages", "error rate (%)"], loc="upper left", fontsize=8)
    return figure


def queue_depth(doc: dict) -> Figure | None:
    queues = doc["health"]["queues"]
    if not queues:
        return None
    figure, axes = _figure("Queue depth in the period")
    names = [q["queue"] for q in queues]
    width = 0.2
    for i, (key, label) in enumerate((("avg_depth", "average"), ("p95_depth", "P95"), ("max_depth", "max"))):
        axes.bar([n + (i - 1) * width for n in range(len(names))], [q[key] for q in queues], width, label=label, color=PALETTE[i])
    axes.set_xticks(range(len(names)), names)
    axes.set_xlim(-0.5 - width * 2, len(names) - 0.5 + width * 2)  # one queue: three slim bars, not a wall
    axes.set_ylabel("queued items")
    axes.legend(loc="upper left", fontsize=8)
    axes.grid(axis="x", visible=False)
    return figure


def hour_by_hour(doc: dict) -> Figure | None:
    """Messages per local hour of the period (bars) with the hour's error rate (line, right
    axis): errors that spike at peak hours show as the line rising with the bars."""
    hours = doc["performance"]["hour_by_hour"]
    if not any(h["messages"] for h in hours):
        return None
    figure, axes = _figure(f"Hour by hour: messages and error rate ({doc['time_zone']})")
    x = range(len(hours))
    axes.bar(x, [h["messages"] for h in hours], width=1.0, color=PALETTE[0], label="messages")
    axes.set_ylabel("messages per hour")
    rate = axes.twinx()
    rate.plot(x, [math.nan if h["error_rate_pct"] is None else h["error_rate_pct"] for h in hours],
              color=PALETTE[3], linewidth=1, marker=".", markersize=3, label="error rate")
    rate.set_ylabel("error rate (%)")
    rate.set_ylim(bottom=0)
    rate.grid(visible=False)
    step = max(1, len(hours) // 8)
    axes.set_xticks(list(x)[::step], [f"{h['date'][5:]} {h['hour']:02d}h" for h in hours][::step])
    axes.set_xlim(-0.5, len(hours) - 0.5)
    figure.legend(loc="upper right", fontsize=8, ncols=2)
    return figure


def new_vs_returning(doc: dict) -> Figure | None:
    days = doc["users"]["new_vs_returning"]
    if not any(d["active_users"] for d in days):
        return None
    figure, axes = _figure("New and returning users per day")
    x = _dates(days)
    new = [d["new_users"] for d in days]
    axes.bar(x, new, color=PALETTE[2], label="new")
    axes.bar(x, [d["returning_users"] for d in days], bottom=new, color=PALETTE[0], label="returning")
    axes.set_ylabel("users")
    axes.legend(loc="upper left", fontsize=8, ncols=2)
    _date_axis(axes)
    return figure


CHARTS: tuple[tuple[str, str, Callable[[dict], Figure | None]], ...] = (
    ("dau_trend", "engagement", dau_trend),
    ("session_duration", "engagement", session_duration),
    ("messages_per_session", "engagement", messages_per_session),
    ("response_by_hour", "performance", response_by_hour),
    ("hour_by_hour", "performance", hour_by_hour),
    ("new_vs_returning", "users", new_vs_returning),
    ("cost_by_provider", "cost", cost_by_provider),
    ("cost_trend", "cost", cost_trend),
    ("cost_top_agents", "cost", cost_top_agents),
    ("tokens_by_model", "tokens", tokens_by_model),
    ("tokens_by_agent", "tokens", tokens_by_agent),
    ("request_volume", "health", request_volume),
    ("queue_depth", "health", queue_depth),
)


def charts(doc: dict) -> dict[str, Chart]:
    """Every non-empty chart of the document, by name."""
    out = {}
    for name, section, draw in CHARTS:
        figure = draw(doc)
        if figure is not None:
            out[name] = Chart(name, section, figure)
    return out


def to_svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and doctype: inline in HTML


def to_png(figure: Figure, dpi: int = 150) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
