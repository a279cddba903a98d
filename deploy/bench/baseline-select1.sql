-- pgbench script for deploy/bench/ledger: one round trip to the server and back.
SELECT 1;
