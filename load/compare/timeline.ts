/**
 * A run second by second since the spike began: claims sent and their latency percentiles (by
 * the second they were sent, so a late answer shows where its user arrived), answers given (by
 * the second they came), and the claims of each second answered after the contract's 3 s or
 * not at all.
 */
import { latencyOf, percentiles, type ClaimRecord } from '../support/open-model';

export interface SecondRow {
  /** Seconds since the first claim was sent. */
  second: number;
  sent: number;
  answered: number;
  /** Of the claims sent in this second, answered ones. */
  p50: number | null;
  p99: number | null;
  max: number | null;
  /** Claims sent in this second answered after the budget, or never (client timeout). */
  late: number;
}

export function perSecond(records: ClaimRecord[], budgetMs = 3000): SecondRow[] {
  if (records.length === 0) return [];
  const zero = Math.min(...records.map((r) => r.sent));
  const last = Math.max(...records.map((r) => r.answered ?? r.sent));
  const rows: SecondRow[] = [];
  for (let second = 0; second <= Math.floor((last - zero) / 1000); second++) {
    rows.push({ second, sent: 0, answered: 0, p50: null, p99: null, max: null, late: 0 });
  }
  const latencies: number[][] = rows.map(() => []);
  for (const r of records) {
    const sentAt = Math.floor((r.sent - zero) / 1000);
    rows[sentAt]!.sent += 1;
    const latency = latencyOf(r);
    if (latency === null) {
      rows[sentAt]!.late += 1;
      continue;
    }
    rows[Math.floor((r.answered! - zero) / 1000)]!.answered += 1;
    latencies[sentAt]!.push(latency);
    if (latency > budgetMs) rows[sentAt]!.late += 1;
  }
  rows.forEach((row, i) => {
    if (latencies[i]!.length === 0) return;
    const p = percentiles(latencies[i]!);
    row.p50 = Math.round(p.p50);
    row.p99 = Math.round(p.p99);
    row.max = Math.round(p.max);
  });
  return rows;
}
