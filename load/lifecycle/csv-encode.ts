/**
 * The export's own cost per row, without MongoDB: `count` synthetic issuance documents streamed
 * through the same CSV encoder (src/http/issuances-csv.ts) with back-pressure into a sink that
 * discards them, as the response would. Shows what the service spends per row and that memory
 * stays flat however many rows pass (the embedded MongoDB-compatible server cannot hold a
 * million issuances in reasonable time; see csv-export.ts).
 *
 *   npx tsx load/lifecycle/csv-encode.ts [--count 1000000]
 */
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { Types } from 'mongoose';
import { csvRow } from '../../src/http/issuances-csv';
import type { IssuanceDocument } from '../../src/mongo/models';

const { values } = parseArgs({ options: { count: { type: 'string', default: '1000000' } } });
const COUNT = Number(values.count);

async function main() {
  const couponId = new Types.ObjectId();
  const issuedAt = new Date();
  let produced = 0;
  const source = new Readable({
    objectMode: true,
    highWaterMark: 1000,
    read() {
      for (let i = 0; i < 1000 && produced < COUNT; i++, produced++) {
        this.push({ _id: new Types.ObjectId(), couponId, userId: `user,${produced}`, sequence: produced + 1, issuedAt, status: 'ACTIVE' } as unknown as IssuanceDocument);
      }
      if (produced >= COUNT) this.push(null);
    },
  });
  let bytes = 0;
  let peakRss = 0;
  const sink = new Writable({
    highWaterMark: 64 * 1024,
    write(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      // A socket's pace: the data leaves as fast as the loop turns.
      setImmediate(done);
    },
  });
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
  const baseline = process.memoryUsage().rss;
  const started = performance.now();
  await pipeline(source, new Transform({ writableObjectMode: true, transform: (doc: IssuanceDocument, _e, done) => done(null, csvRow(doc)) }), sink);
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sampler);
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
  console.log(`| rows | bytes | time | rows/s | RSS before | peak RSS |`);
  console.log(`| --- | --- | --- | --- | --- | --- |`);
  console.log(`| ${COUNT.toLocaleString('en')} | ${(bytes / 1e6).toFixed(0)} MB | ${seconds.toFixed(1)} s | ${Math.round(COUNT / seconds).toLocaleString('en')} | ${(baseline / 1e6).toFixed(0)} MB | ${(peakRss / 1e6).toFixed(0)} MB |`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
