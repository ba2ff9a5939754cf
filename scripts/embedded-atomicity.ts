/**
 * npx tsx scripts/embedded-atomicity.ts [pairs=300]
 *
 * Checks the embedded MongoDB-compatible server the tests run on (src/infra/embedded.ts) for the
 * one guarantee the issuance lifecycle leans on: a conditional findOneAndUpdate is atomic on its
 * document. Each pair is a redeem and a cancel of one ACTIVE document, sent at once on two
 * connections with the lifecycle's own filter (status ACTIVE, not cancelled); on MongoDB exactly
 * one of the two matches. It prints how many pairs both applied. A non-zero count explains a
 * nemesis finding "redeemed-then-cancelled" that real MongoDB cannot produce (docs/testing.md).
 */
import mongoose from 'mongoose';
import { startMongoServer } from '../src/infra/embedded';

const { MongoClient, ObjectId } = mongoose.mongo;

async function main(pairs: number) {
  const mongo = await startMongoServer({ database: 'atomicity' });
  const [a, b] = await Promise.all([MongoClient.connect(mongo.url), MongoClient.connect(mongo.url)]);
  try {
    const first = a.db('atomicity').collection('issuances');
    const second = b.db('atomicity').collection('issuances');
    let both = 0;
    for (let i = 0; i < pairs; i++) {
      const _id = new ObjectId();
      await first.insertOne({ _id, status: 'ACTIVE', cancelKey: null });
      const filter = { _id, status: { $in: ['ACTIVE', null] }, cancelKey: null };
      const [redeemed, cancelled] = await Promise.all([
        first.findOneAndUpdate(filter, { $set: { status: 'REDEEMED', redeemedAt: new Date(), orderId: 'order' } }, { returnDocument: 'after' }),
        second.findOneAndUpdate(filter, { $set: { status: 'CANCELLED', cancelledAt: new Date(), cancelKey: _id } }, { returnDocument: 'after' }),
      ]);
      if (redeemed && cancelled) both += 1;
    }
    console.log(`${pairs} concurrent redeem/cancel pairs on one document each: both applied in ${both} (MongoDB: 0)`);
    process.exitCode = both > 0 ? 1 : 0;
  } finally {
    await Promise.all([a.close(), b.close()]);
    await mongo.stop();
  }
}

void main(Number(process.argv[2] ?? 300));
