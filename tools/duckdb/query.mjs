// query.mjs runs one SQL query with DuckDB and prints the rows as JSON.
// Usage: node query.mjs "SELECT * FROM read_parquet('out/scores/*.parquet')"
import { DuckDBInstance } from '@duckdb/node-api';

const sql = process.argv[2];
const db = await DuckDBInstance.create(':memory:');
const conn = await db.connect();
const reader = await conn.runAndReadAll(sql);
const rows = reader.getRowObjectsJson();
process.stdout.write(JSON.stringify(rows) + '\n');
