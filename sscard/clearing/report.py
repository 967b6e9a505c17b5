"""The one-page HTML report of a clearing run: what a person checks before signing off.

Why this shape: people look at it, they do not read it. So the page leads with a
few totals, then the net-flow matrix (who pays whom: rows are the card-issuing
cities, columns the cities whose operators took the taps, shaded by amount; off-site
flows are what the T-Union clearing exists for), the reject reasons as bars, the
parties' net positions and the gaps. Bilingual labels, amounts in yuan with two
decimals (the files keep integer fen). No time stamp and no engine name, so the
same input gives the same page from DuckDB and Spark.
"""

from __future__ import annotations

import html
from collections import defaultdict
from typing import Any

from sscard.clearing.schema import REASONS


def _city(code: str) -> tuple[str, str]:
    """(name, province prefix) of a T-Union city code, from the city table if the tree has it."""
    try:
        from sscard.cards.cities import city  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return code, ""
    found = city(code)
    if found is None:
        return code, ""
    return str(found.name_zh), str(getattr(found, "gb2260", ""))[:2]


_PROVINCES = {
    "31": "上海 Shanghai",
    "32": "江苏 Jiangsu",
    "33": "浙江 Zhejiang",
    "34": "安徽 Anhui",
}
TOP_CITIES = 12
TOP_PARTIES = 12
OTHER = "~"  # sorts after every 4-digit code


def _yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100:,}.{abs(fen) % 100:02d}"


def _e(text: object) -> str:
    return html.escape(str(text))


def _matrix(title: str, flows: dict[tuple[str, str], int], label: Any) -> str:
    rows = sorted({k[0] for k in flows})
    cols = sorted({k[1] for k in flows})
    if not rows:
        return ""
    top = max(flows.values()) or 1
    head = "".join(f"<th>{_e(label(c))}</th>" for c in cols)
    body = []
    for r in rows:
        cells = []
        for c in cols:
            v = flows.get((r, c), 0)
            alpha = 0.08 + 0.85 * (v / top) ** 0.5 if v else 0  # sqrt: small flows show
            style = f' style="background:rgba(21,101,192,{alpha:.2f});color:{"#fff" if alpha > 0.5 else "#123"}"'
            cells.append(f'<td class="num"{style}>{_yuan(v) if v else ""}</td>')
        total = sum(flows.get((r, c), 0) for c in cols)
        body.append(
            f"<tr><th>{_e(label(r))}</th>{''.join(cells)}<td class='num tot'>{_yuan(total)}</td></tr>"
        )
    col_tot = "".join(
        f"<td class='num tot'>{_yuan(sum(flows.get((r, c), 0) for r in rows))}</td>" for c in cols
    )
    return (
        f"<h2>{title}</h2><div class='scroll'><table class='matrix'><tr><th class='corner'>"
        "发卡城市 issuer ↓ / 收单城市 acquirer →</th>"
        f"{head}<th>合计 total</th></tr>{''.join(body)}"
        f"<tr><th>合计 total</th>{col_tot}<td class='num tot'>{_yuan(sum(flows.values()))}</td></tr>"
        "</table></div>"
    )


def render_html(
    summary: dict[str, Any],
    days: dict[str, list[dict[str, Any]]],
    positions: dict[str, list[dict[str, Any]]],
    gap_rows: list[list[Any]],
) -> str:
    names: dict[str, tuple[str, str]] = {}

    def city(code: str) -> tuple[str, str]:
        if code not in names:
            names[code] = _city(code)
        return names[code]

    def city_label(code: str) -> str:
        name = city(code)[0]
        return code if name == code else f"{name} {code}"

    flows: dict[tuple[str, str], int] = defaultdict(int)
    prov_flows: dict[tuple[str, str], int] = defaultdict(int)
    for rows in days.values():
        for r in rows:
            if r["gross_fen"]:
                key = (r["issuer_city"], r["acquirer_id"][4:8])
                flows[key] += r["gross_fen"]
                pa_, pb = city(key[0])[1], city(key[1])[1]
                if pa_ and pb:
                    prov_flows[(pa_, pb)] += r["gross_fen"]
    totals = summary["totals"]
    paid_fen = totals["paid_fen"]
    offsite = sum(v for (a, b), v in flows.items() if a != b)
    kpis = [
        ("上传记录 rows received", f"{totals['rows']:,}"),
        ("已结算 paid", f"{totals['paid']:,} · ¥{_yuan(paid_fen)}"),
        ("异地 off-site", f"¥{_yuan(offsite)}"),
        ("拒付 refused", f"{totals['refused']:,} · ¥{_yuan(totals['refused_fen'])}"),
        ("重复 duplicates", f"{totals['duplicates']:,}"),
        (
            "缺失 gaps",
            f"{summary['gaps']['terminal']:,} 终端 terminal · {summary['gaps']['card']:,} 卡 card",
        ),
    ]
    kpi_html = "".join(
        f"<div class='kpi'><div class='k'>{_e(k)}</div><div class='v'>{_e(v)}</div></div>"
        for k, v in kpis
    )
    reasons = summary["reasons"]
    top = max((v["rows"] for v in reasons.values()), default=1) or 1
    reason_rows = []
    for code, v in sorted(reasons.items()):
        en, zh = REASONS.get(code, ("?", "?"))
        width = max(1, round(220 * v["rows"] / top))
        colour = (
            "#2e7d32"
            if code in ("10", "11")
            else "#c62828"
            if code in ("01", "13", "02", "07", "09")
            else "#ef6c00"
        )
        reason_rows.append(
            f"<tr><td class='code'>{_e(code)}</td><td>{_e(zh)}<br><span class='en'>{_e(en)}</span></td>"
            f"<td class='num'>{v['rows']:,}</td><td class='num'>{_yuan(v['amount_fen'])}</td>"
            f"<td><div class='bar' style='width:{width}px;background:{colour}'></div></td></tr>"
        )
    # One row per party over the run's days (each day's file has its own).
    run_pos: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for parties in positions.values():
        for p in parties:
            acc = run_pos[p["party"]]
            acc[0] += p["receivable_fen"]
            acc[1] += p["payable_fen"]
            acc[2] += p["net_fen"]
    rank = {"acquirer": 0, "issuer": 1, "clearing": 2}
    labels = {"issuer": "发卡 issuer", "acquirer": "收单 acquirer", "clearing": "清分 clearing"}
    pos_rows = []
    # The largest net positions (receivers and payers); all of them are in the CSVs.
    biggest = sorted(run_pos, key=lambda q: (-abs(run_pos[q][2]), q))[:TOP_PARTIES]
    for party in sorted(biggest, key=lambda q: (rank[q.partition(":")[0]], -run_pos[q][2], q)):
        rec, pay, net = run_pos[party]
        kind, _, ident = party.partition(":")
        if kind == "issuer":
            who = city_label(ident)
        else:
            who = f"{ident} ({city_label(ident[4:8])})" if ident else ""
        sign = "pos" if net > 0 else "neg" if net < 0 else ""
        pos_rows.append(
            f"<tr><td>{_e(labels[kind])}</td><td>{_e(who)}</td>"
            f"<td class='num'>{_yuan(rec)}</td><td class='num'>{_yuan(pay)}</td>"
            f"<td class='num {sign}'>{_yuan(net)}</td></tr>"
        )
    # Terminal gaps first (lost uploads); card numbers masked: people do not need them.
    shown = sorted(gap_rows, key=lambda g: (g[0] != "terminal", g[1], g[2]))[:12]
    gap_html = "".join(
        f"<tr><td>{_e('终端 terminal' if g[0] == 'terminal' else '卡 card')}</td>"
        f"<td class='code'>{_e(g[1] if g[0] == 'terminal' else g[1][:4] + '…' + g[1][-4:])}</td>"
        f"<td class='num'>{g[2]:,}–{g[3]:,}</td><td class='num'>{g[4]:,}</td></tr>"
        for g in shown
    )
    more = (
        f"<p class='note'>… {len(gap_rows) - 12:,} more in gaps.csv</p>"
        if len(gap_rows) > 12
        else ""
    )
    dates = ", ".join(days) or "—"
    # One page: the cities with the most traffic, the rest as one row and column.
    volume: dict[str, int] = defaultdict(int)
    for (a, b), v in flows.items():
        volume[a] += v
        volume[b] += v
    top = set(sorted(volume, key=lambda c: (-volume[c], c))[:TOP_CITIES])
    shown_flows: dict[tuple[str, str], int] = defaultdict(int)
    for (a, b), v in flows.items():
        shown_flows[(a if a in top else OTHER, b if b in top else OTHER)] += v
    others = len(volume) - len(top)
    title = "净流量矩阵 Net flows by city (¥, paid taps)" + (
        f" · 前{TOP_CITIES}城市 top {TOP_CITIES}, {others} more as 其他 other" if others > 0 else ""
    )
    matrix = _matrix(title, shown_flows, lambda c: "其他 other" if c == OTHER else city_label(c))
    prov_matrix = (
        _matrix(
            "按省份 Net flows by province (¥, paid taps)",
            prov_flows,
            lambda p: _PROVINCES.get(p, p),
        )
        if prov_flows
        else ""
    )
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>清分结算报告 Clearing report {dates}</title>
<style>
body{{font-family:"Noto Sans CJK SC","WenQuanYi Zen Hei",sans-serif;margin:24px 32px;color:#1a2733;background:#f7f9fb}}
h1{{font-size:22px;margin:0 0 4px}} h2{{font-size:16px;margin:22px 0 8px;color:#0d47a1}}
.sub{{color:#5b6b7a;font-size:13px;margin-bottom:14px}}
.kpis{{display:flex;gap:10px;flex-wrap:wrap}}
.kpi{{background:#fff;border:1px solid #dde3ea;border-radius:8px;padding:8px 14px;min-width:150px}}
.kpi .k{{font-size:12px;color:#5b6b7a}} .kpi .v{{font-size:17px;font-weight:600;margin-top:2px}}
table{{border-collapse:collapse;background:#fff;font-size:12.5px}}
th,td{{border:1px solid #e1e6ec;padding:4px 8px}} th{{background:#eef2f6;font-weight:600;text-align:left}}
.num{{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}} .tot{{font-weight:600;background:#f3f5f8}}
.matrix th.corner{{font-size:11px;color:#5b6b7a}} .scroll{{overflow-x:auto;max-width:100%}}
.code{{font-family:monospace}} .en{{color:#6b7b8a;font-size:11px}}
.bar{{height:12px;border-radius:3px}} .pos{{color:#2e7d32}} .neg{{color:#c62828}}
.cols{{display:flex;gap:28px;flex-wrap:wrap;align-items:flex-start}} .note{{color:#6b7b8a;font-size:12px}}
</style></head><body>
<h1>清分结算报告 · Clearing report</h1>
<div class="sub">清算日 clearing day(s): {_e(dates)} · 截止 as of {_e(summary["as_of"])} · 手续费 fee {summary["fee_bp"]} bp · sscard 配置 profile (docs/reference.md part K)</div>
<div class="kpis">{kpi_html}</div>
{prov_matrix}
{matrix}
<div class="cols"><div><h2>拒付原因 Reasons</h2><table><tr><th>码 code</th><th>原因 reason</th><th>笔数 rows</th><th>金额 ¥</th><th></th></tr>{"".join(reason_rows)}</table></div>
<div><h2>缺失记录 Gaps (reported, not settled)</h2><table><tr><th>类型 kind</th><th>终端/卡 key</th><th>缺失 missing</th><th>条 n</th></tr>{gap_html or "<tr><td colspan=4>无 none</td></tr>"}</table>{more}</div></div>
<h2>各方头寸 Positions (¥, all days; the {min(TOP_PARTIES, len(run_pos))} largest of {len(run_pos)}; all, per day, in positions_&lt;date&gt;.csv)</h2>
<table><tr><th>角色 role</th><th>机构 party</th><th>应收 receivable</th><th>应付 payable</th><th>净额 net</th></tr>{"".join(pos_rows)}</table>
</body></html>
"""
