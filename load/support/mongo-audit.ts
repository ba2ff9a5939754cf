/**
 * What MongoDB, the durable record, holds for a coupon after a run: the contract's guarantees
 * checked where they are defined (no oversell, one per user, sequences unique in 1..total).
 */
import mongoose, { Types } from 'mongoose';

export interface IssuanceAudit {
  issued: number;
  distinctUsers: number;
  distinctSequences: number;
  highestSequence: number;
  /** No oversell, one per user, each sequence once and within 1..total. */
  guaranteesHold: boolean;
}

export async function auditIssuances(mongoUri: string, couponId: string, totalQuantity: number): Promise<IssuanceAudit> {
  const connection = await mongoose.createConnection(mongoUri, { serverMonitoringMode: 'poll', autoCreate: false, autoIndex: false }).asPromise();
  try {
    const docs = await connection.db!
      .collection<{ userId: string; sequence: number }>('issuances')
      .find({ couponId: new Types.ObjectId(couponId) }, { projection: { userId: 1, sequence: 1 } })
      .toArray();
    const sequences = docs.map((d) => d.sequence);
    const audit = {
      issued: docs.length,
      distinctUsers: new Set(docs.map((d) => d.userId)).size,
      distinctSequences: new Set(sequences).size,
      highestSequence: sequences.length ? Math.max(...sequences) : 0,
    };
    const guaranteesHold =
      audit.issued <= totalQuantity && audit.distinctUsers === audit.issued && audit.distinctSequences === audit.issued && audit.highestSequence <= totalQuantity && sequences.every((s) => s >= 1);
    return { ...audit, guaranteesHold };
  } finally {
    await connection.close();
  }
}
