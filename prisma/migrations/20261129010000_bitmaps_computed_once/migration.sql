-- The planner inlines these SQL functions into their callers, and with them the expressions
-- passed as arguments: paired_outcomes() pasted its padded bitmaps into each of its four bit
-- counts, and bit_positions() re-evaluated its bitmap argument (the wrong ones of a cell, the
-- flips between two cells) once per bit it tested, 3,000 times for a 3,000-example cell.
-- OFFSET 0 keeps each subquery a subquery, so every bitmap is computed once per call.
-- Same arguments, same results.
CREATE OR REPLACE FUNCTION paired_outcomes(a_seen bit varying, a_hits bit varying, b_seen bit varying, b_hits bit varying)
  RETURNS TABLE (both_right integer, only_a integer, only_b integer, neither integer)
  LANGUAGE sql IMMUTABLE PARALLEL SAFE ROWS 1
AS $$
  SELECT bit_count(p.s & p.a & p.b)::integer, bit_count(p.s & p.a & ~p.b)::integer,
         bit_count(p.s & ~p.a & p.b)::integer, bit_count(p.s & ~p.a & ~p.b)::integer
    FROM (SELECT bits_pad(a_seen, l.n) & bits_pad(b_seen, l.n) AS s, bits_pad(a_hits, l.n) AS a, bits_pad(b_hits, l.n) AS b
            FROM (SELECT greatest(length(a_seen), length(b_seen)) AS n) l
          OFFSET 0) p
$$;

CREATE OR REPLACE FUNCTION bit_positions(b bit varying, skip integer, take integer) RETURNS SETOF integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE ROWS 100
AS $$
  SELECT i FROM (SELECT b AS bits OFFSET 0) x, generate_series(0, length(x.bits) - 1) i
   WHERE get_bit(x.bits, i) = 1 ORDER BY i OFFSET skip LIMIT take
$$;
