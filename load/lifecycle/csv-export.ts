/**
 * The CSV export of a large coupon: time and the service's peak memory.
 *
 *   npm run bench:csv-export -- [--count 1000000] [--batch 10000]
 *
 * The service runs as its own process on fresh embedded servers; `count` issuances of one coupon
 * are inserted straight into MongoDB with insertMany (the claim path would take hours on the
 * embedded server), then GET /admin/coupons/{id}/issuances.csv is read to the end by a client
 * that only counts bytes and lines. Peak memory is the service process's VmHWM (peak resident
 * set, from /proc), read before and after the export.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { parseArgs } from 'node:util';
import mongoose from 'mongoose';
import { createCoupon, ROOT, startServiceProcess } from '../support/service-process';

const { MongoClient, ObjectId } = mongoose.mongo;

const { values } = parseArgs({ options: { count: { type: 'string', default: '1000000' }, batch: { type: 'string', default: '10000' } } });
const COUNT = Number(values.count);
const BATCH = Number(values.batch);

const memory = (pid: number) => {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
};

async function main() {
  const service = await startServiceProcess({ logFile: path.join(ROOT, 'load', 'results', 'csv-export-service.log') });
  const mongo = new MongoClient(service.mongoUri, { serverMonitoringMode: 'poll' });
  try {
    await mongo.connect();
    const couponId = await createCoupon(service, { name: 'Export', totalQuantity: Math.max(COUNT, 1) });
    const issuances = mongo.db().collection('issuances');
    const insertStarted = performance.now();
    const issuedAt = new Date();
    for (let from = 0; from < COUNT; from += BATCH) {
      const docs = Array.from({ length: Math.min(BATCH, COUNT - from) }, (_, i) => ({
        _id: new ObjectId(),
        couponId: new ObjectId(couponId),
        userId: `user-${from + i}`,
        sequence: from + i + 1,
        issuedAt,
        status: 'ACTIVE',
      }));
      await issuances.insertMany(docs, { ordered: true });
      console.log(`inserted ${from + docs.length} (${((performance.now() - insertStarted) / 1000).toFixed(1)} s)`);
    }
    const insertS = (performance.now() - insertStarted) / 1000;
    const before = memory(service.pid);
    const token = service.auth.issue('load-operator', { admin: true, expiresInSeconds: 3600 });
    const started = performance.now();
    let firstByteMs = 0;
    const { bytes, lines, status } = await new Promise<{ bytes: number; lines: number; status: number }>((resolve, reject) => {
      http
        .get(`${service.url}/admin/coupons/${couponId}/issuances.csv`, { headers: { authorization: `Bearer ${token}` } }, (res) => {
          let bytes = 0;
          let lines = 0;
          res.on('data', (chunk: Buffer) => {
            if (!firstByteMs) firstByteMs = performance.now() - started;
            bytes += chunk.length;
            for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines += 1;
          });
          res.on('end', () => resolve({ bytes, lines, status: res.statusCode ?? 0 }));
          res.on('error', reject);
        })
        .on('error', reject);
    });
    const exportS = (performance.now() - started) / 1000;
    const after = memory(service.pid);
    if (status !== 200 || lines !== COUNT + 1) throw new Error(`export answered ${status} with ${lines} lines, expected ${COUNT + 1}`);
    console.log(`\nCSV export: ${COUNT.toLocaleString('en')} issuances (inserted in ${insertS.toFixed(0)} s)`);
    console.log(`| rows | bytes | first byte | total time | rows/s | service RSS before | service peak RSS (VmHWM) before | after |`);
    console.log(`| --- | --- | --- | --- | --- | --- | --- | --- |`);
    console.log(
      `| ${COUNT.toLocaleString('en')} | ${(bytes / 1e6).toFixed(1)} MB | ${firstByteMs.toFixed(0)} ms | ${exportS.toFixed(1)} s | ${Math.round(COUNT / exportS).toLocaleString('en')} | ${before.rssMb.toFixed(0)} MB | ${before.peakMb.toFixed(0)} MB | ${after.peakMb.toFixed(0)} MB |`,
    );
  } finally {
    await mongo.close();
    await service.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
