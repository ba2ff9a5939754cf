/**
 * npx tsx scripts/embedded-write-cost.ts [documents=10000]
 *
 * How the embedded MongoDB-compatible server's write cost grows with a collection
 * (docs/embedded-mongodb.md): fills a collection with only its `_id` index in inserts of 100, and
 * after every 1,000 documents times one more insert of 100 and one updateOne by `_id`. On MongoDB
 * both stay about a millisecond whatever the size. A webhook delivery writes its outcome with such
 * an updateOne, once per event, which is why a drop of 10,000 wins with a webhook cannot be
 * measured on this server (docs/webhooks.md).
 */
import mongoose from 'mongoose';
import { startMongoServer } from '../src/infra/embedded';

async function main(documents: number) {
  const mongo = await startMongoServer({ database: 'writecost' });
  const client = await mongoose.mongo.MongoClient.connect(mongo.url);
  try {
    const collection = client.db('writecost').collection<{ _id: string; n: number; state: string }>('deliveries');
    console.log('| documents | insert of 100 | updateOne by _id |\n| --- | --- | --- |');
    for (let n = 0; n < documents; ) {
      const started = performance.now();
      await collection.insertMany(Array.from({ length: 100 }, (_, i) => ({ _id: `d${n + i}`, n: n + i, state: 'pending' })));
      const insertMs = performance.now() - started;
      n += 100;
      if (n % 1000 !== 0) continue;
      const updateStarted = performance.now();
      await collection.updateOne({ _id: `d${n - 50}` }, { $set: { state: 'delivered' } });
      console.log(`| ${n.toLocaleString('en')} | ${insertMs.toFixed(0)} ms | ${(performance.now() - updateStarted).toFixed(0)} ms |`);
    }
  } finally {
    await client.close();
    await mongo.stop();
  }
}

main(Number(process.argv[2] ?? 10_000)).catch((error) => {
  console.error(error);
  process.exit(1);
});
