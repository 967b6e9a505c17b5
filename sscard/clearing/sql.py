"""The clearing job as SQL, one text for DuckDB and Spark (docs/reference.md part K "sscard profile").

Why one text: "both engines produce identical results" is easiest to keep true when
there is one query, in the dialect both accept (window functions, CASE, ``greatest``,
``DATE '...'`` literals, explicit ``NULLS FIRST``). Engines differ only in how the
per-row check column ``chk`` (:func:`sscard.clearing.tac.check_rows`) is attached
(a vectorised pass over the Arrow table for DuckDB, ``mapInArrow`` in Spark) and
how a step is materialised.

Steps, each a view or table over the last:

1. ``copies``: ``copy_no`` within byte-identical rows (every content column equal),
   in receipt order (upload date, file id, line no): copies after the first are ``03``.
2. ``c2``: else the first reason of a row's own checks (02 field, 07 time, 09 no key,
   01 TAC).
3. ``ranks``, ``c4``: among rows that passed, the same PSAM terminal sequence (any row) or card
   counter (non-grey rows) held by a row received earlier: ``13``; what is left is
   ``10``, or ``G`` for grey rows.
4. ``decided``: grey rows settled from the card's other rows (``ev``: paid and grey
   rows): rule 1 its kept 805A TAC verified (``chk`` 11) -> 11; rule 2 the row at
   N + 1 recorded the card's EF 0018 entry for counter N: this debit -> 11, another
   purchase -> 12; rule 3 a paid row at N -> 12; rule 4 no other row at N and the
   row at N + 1 starts from this row's balance minus its amount -> 11; else 04, or
   14 once older than the expiry. 11 and 12 are settled on the day their evidence
   arrived.

The receipt order (upload date, file id, line no) is total for every ranking once
:data:`CLASHES` found no (file id, line no) pair with two contents, so the engines
cannot pick different "first" rows.
"""

from __future__ import annotations

from datetime import date, timedelta

from sscard.clearing.schema import CONTENT_NAMES, GREY_EXPIRY_DAYS, INPUT_NAMES

#: Receipt order. Total among the rows that are ranked: a (file id, line no) pair never
#: holds two different contents (:data:`CLASHES` refuses such input), and byte-identical
#: copies are out of the ranking (03) and tie harmlessly.
ORDER = "upload_date ASC, file_id ASC, line_no ASC"
_CONTENT = ", ".join(CONTENT_NAMES)
_OUT = ", ".join(f"c.{c}" for c in INPUT_NAMES)
#: The columns the steps after the own checks read (the rest only go to the outputs,
#: joined back by ``rid``): a step that carries all 34 columns costs several times more.
WORKING = (
    "upload_date", "file_id", "line_no", "acquirer_id", "city_code", "asn", "card_ctr",
    "bal_before", "amount", "tx_type", "term_id", "term_seq", "tx_time", "grey",
    "prev_ctr", "prev_type", "prev_amount", "prev_term", "prev_time", "chk",
)  # fmt: skip
_WORKING_C = ", ".join(f"c.{n}" for n in WORKING)


def steps(as_of: date, hash_fn: str) -> list[tuple[str, str, bool]]:
    """(name, SELECT, materialise) in order; ``checked`` (input + ``chk`` + a unique row
    id ``rid``) must exist. ``hash_fn``: the engine's multi-column hash (DuckDB ``hash``,
    Spark ``xxhash64``); it only narrows the search for copies, which are then compared
    column by column, so the engines' different hashes cannot change a result.

    Windows run over narrow projections keyed by ``rid`` and are joined back: a window
    over all 34 columns costs ten times as much.
    """
    expiry_cut = (as_of - timedelta(days=GREY_EXPIRY_DAYS)).isoformat()
    content_c = ", ".join(f"c.{n}" for n in CONTENT_NAMES)
    return [
        ("hashed", f"SELECT rid, {hash_fn}({_CONTENT}) AS h FROM checked", False),
        ("cand", "SELECT h FROM hashed GROUP BY h HAVING count(*) > 1", False),
        (
            "copies",
            f"SELECT c.rid, row_number() OVER (PARTITION BY {content_c}"
            " ORDER BY c.upload_date, c.file_id, c.line_no, c.rid) AS copy_no"
            " FROM checked c JOIN hashed x ON x.rid = c.rid JOIN cand ON cand.h = x.h",
            True,
        ),
        (
            "c2",
            f"SELECT c.rid, {_WORKING_C}, coalesce(k.copy_no, 1) AS copy_no,"
            " CASE WHEN k.copy_no > 1 THEN '03' WHEN c.chk = 2 THEN '02'"
            " WHEN c.chk = 7 THEN '07' WHEN c.chk = 9 THEN '09' WHEN c.chk = 1 THEN '01' END"
            " AS pre FROM checked c LEFT JOIN copies k ON k.rid = c.rid",
            False,
        ),
        (
            "ranks",
            "SELECT rid,"
            " row_number() OVER (PARTITION BY term_id, term_seq"
            f" ORDER BY grey ASC, {ORDER}, rid) AS rank_t,"
            " CASE WHEN NOT grey THEN row_number() OVER (PARTITION BY asn, card_ctr, grey"
            f" ORDER BY {ORDER}, rid) END AS rank_c"
            " FROM c2 WHERE pre IS NULL",
            True,
        ),
        (
            "c4",
            "SELECT c2.*, CASE WHEN c2.pre IS NOT NULL THEN c2.pre"
            " WHEN r.rank_t > 1 OR r.rank_c > 1 THEN '13' WHEN c2.grey THEN 'G' ELSE '10' END"
            " AS code1 FROM c2 LEFT JOIN ranks r ON r.rid = c2.rid",
            True,
        ),
        (
            "ev",
            "SELECT rid, upload_date, asn, card_ctr, grey, bal_before, prev_ctr,"
            " prev_type, prev_amount, prev_term, prev_time FROM c4 WHERE code1 IN ('10', 'G')",
            False,
        ),
        (
            "g",
            "SELECT rid, upload_date, asn, card_ctr, bal_before, amount, tx_type,"
            " term_id, tx_time FROM c4 WHERE code1 = 'G'",
            False,
        ),
        (
            "g_next",
            "SELECT g.rid,"
            " max(CASE WHEN e.prev_ctr = g.card_ctr AND e.prev_type IN (6, 9) THEN 1 ELSE 0 END)"
            " AS prev_any,"
            " max(CASE WHEN e.prev_ctr = g.card_ctr AND e.prev_type = g.tx_type"
            " AND e.prev_amount = g.amount AND e.prev_term = g.term_id"
            " AND e.prev_time = g.tx_time THEN 1 ELSE 0 END) AS prev_this,"
            " max(CASE WHEN e.bal_before = g.bal_before - g.amount THEN 1 ELSE 0 END)"
            " AS bal_next,"
            " min(e.upload_date) AS next_date"
            " FROM g JOIN ev e ON e.asn = g.asn AND e.card_ctr = (g.card_ctr + 1) % 65536"
            " GROUP BY g.rid",
            False,
        ),
        (
            "g_same",
            "SELECT g.rid,"
            " max(CASE WHEN NOT e.grey THEN 1 ELSE 0 END) AS paid_same,"
            " min(CASE WHEN NOT e.grey THEN e.upload_date END) AS same_date,"
            " count(*) AS rivals"
            " FROM g JOIN ev e ON e.asn = g.asn AND e.card_ctr = g.card_ctr"
            " AND e.rid <> g.rid GROUP BY g.rid",
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
            " FROM c4 LEFT JOIN g_next n ON n.rid = c4.rid"
            " LEFT JOIN g_same s ON s.rid = c4.rid) d",
            True,
        ),
    ]


#: (file id, line no) pairs that hold two different contents: refused as input.
CLASHES = (
    "SELECT file_id, line_no FROM c2 WHERE copy_no = 1 GROUP BY file_id, line_no"
    " HAVING count(*) > 1 ORDER BY file_id, line_no LIMIT 5"
)

#: Every row's verdict by ``rid``, in receipt order (the accepted/rejected outputs); the
#: reason breaks the one tie left (a row sent twice under one name: 10 and 03; rows
#: still tied are byte-identical, so their order cannot show).
RESULT_KEYS = (
    "SELECT d.rid, d.reason, d.settle_date,"
    " CAST(CASE WHEN d.rule BETWEEN 1 AND 4 THEN d.rule END AS SMALLINT) AS grey_rule"
    " FROM decided d ORDER BY d.upload_date, d.file_id, d.line_no, d.reason"
)

#: The same with every input column joined back: for an engine that does not hold the
#: uploads itself (Spark reads them on its executors).
RESULT = (
    f"SELECT {_OUT}, d.reason, d.settle_date,"
    " CAST(CASE WHEN d.rule BETWEEN 1 AND 4 THEN d.rule END AS SMALLINT) AS grey_rule"
    " FROM decided d JOIN checked c ON c.rid = d.rid"
    " ORDER BY d.upload_date, d.file_id, d.line_no, d.reason"
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
