/**
 * Builds the MongoDB connection. Commands are never buffered while disconnected (that is how
 * a stalled database turns into hanging requests); every operation fails fast instead.
 */
import mongoose, { type Connection } from 'mongoose';
import type { Logger } from 'pino';

/** `name` labels the logs; webhook deliveries use a connection of their own with a small pool. */
export async function connectMongo(uri: string, logger: Logger, { name = 'main', maxPoolSize = 20 } = {}): Promise<Connection> {
  const log = logger.child({ mongo: name });
  const connection = mongoose.createConnection(uri, {
    autoCreate: false,
    autoIndex: false,
    bufferCommands: false,
    serverSelectionTimeoutMS: 2000,
    connectTimeoutMS: 2000,
    // Polling monitors instead of streaming ones: the embedded MongoDB-compatible server does
    // not implement streaming hello (it drops the connection every 500 ms); polling is standard
    // on every MongoDB deployment.
    serverMonitoringMode: 'poll',
    heartbeatFrequencyMS: 2000,
    maxPoolSize,
  });
  connection.on('disconnected', () => log.warn('mongodb disconnected'));
  connection.on('reconnected', () => log.warn('mongodb reconnected'));
  await connection.asPromise();
  return connection;
}
