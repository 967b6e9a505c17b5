"""The clearing job as SQL, one text for DuckDB and Spark (clearing.md "sscard profile").

Why one text: "both engines produce identical results" is easiest to keep true when
there is one query, in the dialect both accept (window functions, CASE, ``greatest``,
``DATE '...'`` literals, explicit ``NULLS FIRST``). Engines differ only in how the
per-row check column ``chk`` (:func:`sscard.clearing.tac.check_rows`) is attached
(an Arrow UDF in DuckDB, ``mapInArrow`` in Spark) and how a step is materialised.

Steps, each a view or table over the last:

1. ``c1``: ``copy_no`` within byte-identical rows (every content column equal), in
   receipt order (upload date, file id, line no): copies after the first are ``03``.
2. ``c2``: the first reason of a row's own checks (02 field, 07 time, 09 no key,
   01 TAC).
3. ``c4``: among rows that passed, the same PSAM terminal sequence (any row) or card
   counter (non-grey rows) held by a row received earlier: ``13``; what is left is
   ``10``, or ``G`` for grey rows.
4. ``decided``: grey rows settled from the card's other rows (``ev``: paid and grey
   rows): rule 1 its kept 805A TAC verified (``chk`` 11) -> 11; rule 2 the row at
   N + 1 recorded the card's EF 0018 entry for counter N: this debit -> 11, another
   purchase -> 12; rule 3 a paid row at N -> 12; rule 4 no other row at N and the
   row at N + 1 starts from this row's balance minus its amount -> 11; else 04, or
   14 once older than the expiry. 11 and 12 are settled on the day their evidence
   arrived.

Ties in every window are broken by all content columns, so the order is total and
the engines cannot pick different "first" rows.
"""

from __future__ import annotations

from datetime import date, timedelta

from sscard.clearing.schema import CONTENT_NAMES, GREY_EXPIRY_DAYS, INPUT_NAMES

#: Total receipt order: position first, then content (identical rows tie harmlessly).
ORDER = ", ".join(
    f"{c} ASC NULLS FIRST" for c in ("upload_date", "file_id", "line_no", *CONTENT_NAMES)
)
_CONTENT = ", ".join(CONTENT_NAMES)
_OUT = ", ".join(f"d.{c}" for c in INPUT_NAMES)


def steps(as_of: date) -> list[tuple[str, str, bool]]:
    """(name, SELECT, materialise) in order; ``checked`` (input + ``chk``) must exist."""
    expiry_cut = (as_of - timedelta(days=GREY_EXPIRY_DAYS)).isoformat()
    return [
        (
            "c1",
            f"SELECT *, row_number() OVER (PARTITION BY {_CONTENT} ORDER BY {ORDER}) AS copy_no"
            " FROM checked",
            False,
        ),
        (
            "c2",
            "SELECT *, CASE WHEN copy_no > 1 THEN '03' WHEN chk = 2 THEN '02'"
            " WHEN chk = 7 THEN '07' WHEN chk = 9 THEN '09' WHEN chk = 1 THEN '01' END AS pre"
            " FROM c1",
            False,
        ),
        (
            "c3",
            "SELECT *,"
            " CASE WHEN pre IS NULL THEN row_number() OVER (PARTITION BY term_id, term_seq,"
            f" pre IS NULL ORDER BY grey ASC, {ORDER}) END AS rank_t,"
            " CASE WHEN pre IS NULL AND NOT grey THEN row_number() OVER (PARTITION BY asn,"
            f" card_ctr, pre IS NULL, grey ORDER BY {ORDER}) END AS rank_c"
            " FROM c2",
            False,
        ),
        (
            "c4",
            "SELECT *, CASE WHEN pre IS NOT NULL THEN pre WHEN rank_t > 1 OR rank_c > 1"
            " THEN '13' WHEN grey THEN 'G' ELSE '10' END AS code1 FROM c3",
            True,
        ),
        (
            "ev",
            "SELECT file_id, line_no, upload_date, asn, card_ctr, grey, bal_before, prev_ctr,"
            " prev_type, prev_amount, prev_term, prev_time FROM c4 WHERE code1 IN ('10', 'G')",
            False,
        ),
        (
            "g",
            "SELECT file_id, line_no, upload_date, asn, card_ctr, bal_before, amount, tx_type,"
            " term_id, tx_time FROM c4 WHERE code1 = 'G'",
            False,
        ),
        (
            "g_next",
            "SELECT g.file_id, g.line_no,"
            " max(CASE WHEN e.prev_ctr = g.card_ctr AND e.prev_type IN (6, 9) THEN 1 ELSE 0 END)"
            " AS prev_any,"
            " max(CASE WHEN e.prev_ctr = g.card_ctr AND e.prev_type = g.tx_type"
            " AND e.prev_amount = g.amount AND e.prev_term = g.term_id"
            " AND e.prev_time = g.tx_time THEN 1 ELSE 0 END) AS prev_this,"
            " max(CASE WHEN e.bal_before = g.bal_before - g.amount THEN 1 ELSE 0 END)"
            " AS bal_next,"
            " min(e.upload_date) AS next_date"
            " FROM g JOIN ev e ON e.asn = g.asn AND e.card_ctr = (g.card_ctr + 1) % 65536"
            " GROUP BY g.file_id, g.line_no",
            False,
        ),
        (
            "g_same",
            "SELECT g.file_id, g.line_no,"
            " max(CASE WHEN NOT e.grey THEN 1 ELSE 0 END) AS paid_same,"
            " min(CASE WHEN NOT e.grey THEN e.upload_date END) AS same_date,"
            " count(*) AS rivals"
            " FROM g JOIN ev e ON e.asn = g.asn AND e.card_ctr = g.card_ctr"
            " AND NOT (e.file_id = g.file_id AND e.line_no = g.line_no)"
            " GROUP BY g.file_id, g.line_no",
            False,
        ),
        (
            "decided",
            "SELECT d.*,"
            " CASE WHEN d.rule = 0 THEN d.upload_date"
            " WHEN d.rule = 2 OR d.rule = 4 THEN greatest(d.upload_date, d.next_date)"
            " WHEN d.rule = 3 THEN greatest(d.upload_date, d.same_date)"
            " ELSE d.upload_date END AS settle_date,"
            " CASE WHEN d.code1 <> 'G' THEN d.code1"
            " WHEN d.rule = 1 OR d.rule = 4 OR (d.rule = 2 AND d.prev_this = 1) THEN '11'"
            " WHEN d.rule = 2 OR d.rule = 3 THEN '12'"
            f" WHEN d.upload_date < DATE '{expiry_cut}' THEN '14' ELSE '04' END AS reason"
            " FROM (SELECT c4.*, n.prev_this, n.next_date, s.same_date,"
            " CASE WHEN c4.code1 <> 'G' THEN 0 WHEN c4.chk = 11 THEN 1"
            " WHEN n.prev_any = 1 THEN 2 WHEN s.paid_same = 1 THEN 3"
            " WHEN coalesce(s.rivals, 0) = 0 AND n.bal_next = 1 THEN 4 ELSE 5 END AS rule"
            " FROM c4 LEFT JOIN g_next n ON n.file_id = c4.file_id AND n.line_no = c4.line_no"
            " LEFT JOIN g_same s ON s.file_id = c4.file_id AND s.line_no = c4.line_no) d",
            True,
        ),
    ]


#: Every row with its reason, in total receipt order (the accepted/rejected outputs).
RESULT = (
    f"SELECT {_OUT}, d.reason, d.settle_date,"
    " CAST(CASE WHEN d.rule BETWEEN 1 AND 4 THEN d.rule END AS SMALLINT) AS grey_rule"
    f" FROM decided d ORDER BY {', '.join('d.' + o for o in ORDER.split(', '))}"
)

#: Netting per clearing day, issuing city and acquirer; integer fen (profile "Netting").
SETTLEMENT = (
    "SELECT settle_date AS clear_date, city_code AS issuer_city, acquirer_id,"
    " CAST(sum(CASE WHEN reason IN ('10', '11') THEN 1 ELSE 0 END) AS BIGINT) AS n_paid,"
    " CAST(sum(CASE WHEN reason IN ('10', '11') THEN amount ELSE 0 END) AS BIGINT) AS gross_fen,"
    " CAST(sum(CASE WHEN reason NOT IN ('10', '11', '03') THEN 1 ELSE 0 END) AS BIGINT)"
    " AS n_refused,"
    " CAST(sum(CASE WHEN reason NOT IN ('10', '11', '03') THEN amount ELSE 0 END) AS BIGINT)"
    " AS refused_fen"
    " FROM decided GROUP BY settle_date, city_code, acquirer_id"
    " ORDER BY clear_date, issuer_city, acquirer_id"
)

#: Missing PSAM terminal sequences and card counters (profile "Gaps"): reported only.
#: Rows that did not use a number are left out: malformed ones (02, 07), copies (03)
#: and, for card counters, voided grey rows (12).
GAPS = (
    "SELECT kind, gap_key, first_missing, last_missing FROM ("
    " SELECT 'terminal' AS kind, term_id AS gap_key, s + 1 AS first_missing,"
    " nxt - 1 AS last_missing FROM ("
    "  SELECT term_id, s, lead(s) OVER (PARTITION BY term_id ORDER BY s) AS nxt FROM ("
    "   SELECT DISTINCT term_id, term_seq AS s FROM decided"
    "   WHERE reason NOT IN ('02', '07', '03')) t1) t2 WHERE nxt > s + 1"
    " UNION ALL"
    " SELECT 'card' AS kind, asn AS gap_key, s + 1 AS first_missing, nxt - 1 AS last_missing"
    " FROM ("
    "  SELECT asn, s, lead(s) OVER (PARTITION BY asn ORDER BY s) AS nxt FROM ("
    "   SELECT DISTINCT asn, CAST(card_ctr AS BIGINT) AS s FROM decided"
    "   WHERE reason NOT IN ('02', '07', '03', '12')) t3) t4 WHERE nxt > s + 1"
    ") gaps ORDER BY kind, gap_key, first_missing"
)
