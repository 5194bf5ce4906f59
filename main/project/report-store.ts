/** The evidence reports made from a project (schema v9): where each bundle went and the key that signed it. */
import type Database from 'better-sqlite3';
import type { ReportScope, ReportSummary } from '../api/contract.js';

export function recordReport(db: Database.Database, r: ReportSummary): void {
  db.prepare(
    `INSERT OR REPLACE INTO reports (id, created_at, scope_json, dir, zip, fingerprint, operator, case_ref, findings, images)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(r.id, r.createdAt, JSON.stringify(r.scope), r.dir, r.zip, r.fingerprint, r.operator, r.caseRef, r.findings, r.images);
}

export function listReports(db: Database.Database): ReportSummary[] {
  const rows = db.prepare('SELECT * FROM reports ORDER BY created_at DESC, id DESC').all() as {
    id: string; created_at: string; scope_json: string; dir: string; zip: string | null; fingerprint: string; operator: string; case_ref: string; findings: number; images: number;
  }[];
  return rows.map((r) => ({
    id: r.id,
    createdAt: r.created_at,
    scope: JSON.parse(r.scope_json) as ReportScope,
    dir: r.dir,
    zip: r.zip,
    fingerprint: r.fingerprint,
    operator: r.operator,
    caseRef: r.case_ref,
    findings: r.findings,
    images: r.images,
  }));
}
