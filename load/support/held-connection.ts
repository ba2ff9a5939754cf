/**
 * One user's connection for benches of held requests (the opening draw): a raw TCP socket that
 * writes a request prepared in advance in one write and reads the answer with a parser that
 * knows only what the service sends (a status line, headers with content-length, a JSON body).
 *
 * Written by hand because the bench must cost far less than the service it measures, on the same
 * two cores: node:http's client builds a request object, an agent assignment and a parser per
 * request (about 100 µs of the client's CPU here), so 10,000 users pressing at one instant left
 * the client's process for a second before the first byte was sent, and the service saw the
 * window close before it saw the entries. autocannon prepares requests the same way but sends
 * the same set on every connection in a loop; a held request per user, answered once, with a
 * retry on the drop page's policy, is not its model.
 */
import net from 'node:net';

export interface HeldAnswer {
  status: number;
  /** The retry-after header in seconds, when sent. */
  retryAfter?: number;
  body: string;
}

/** The bytes of one POST with a JSON body, ready to write. */
export function preparedPost(host: string, path: string, body: string, headers: Record<string, string>): Buffer {
  const head = [`POST ${path} HTTP/1.1`, `host: ${host}`, 'content-type: application/json', `content-length: ${Buffer.byteLength(body)}`, ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`)];
  return Buffer.from(`${head.join('\r\n')}\r\n\r\n${body}`);
}

export class HeldConnection {
  private socket: net.Socket | undefined;
  private buffered: Buffer = Buffer.alloc(0);
  private waiting: { resolve: (answer: HeldAnswer) => void; reject: (error: Error) => void } | undefined;

  constructor(private readonly port: number, private readonly host = '127.0.0.1') {}

  /** Opens the socket (again, when the server closed it). */
  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port: this.port, host: this.host, noDelay: true });
      socket.once('connect', () => {
        socket.off('error', reject);
        socket.on('error', (error) => this.fail(error));
        resolve();
      });
      socket.once('error', reject);
      socket.on('data', (chunk: Buffer) => this.received(chunk));
      socket.on('close', () => {
        if (this.socket === socket) this.socket = undefined;
        this.fail(new Error('connection closed'));
      });
      this.socket = socket;
      this.buffered = Buffer.alloc(0);
    });
  }

  /** Writes the request and resolves with its answer; one request at a time per connection. */
  async send(request: Buffer): Promise<HeldAnswer> {
    if (!this.socket || this.socket.destroyed) await this.connect();
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.socket!.write(request);
    });
  }

  close(): void {
    this.socket?.destroy();
  }

  private fail(error: Error): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.reject(error);
  }

  private received(chunk: Buffer): void {
    this.buffered = this.buffered.length ? Buffer.concat([this.buffered, chunk]) : chunk;
    const headEnd = this.buffered.indexOf('\r\n\r\n');
    if (headEnd < 0) return;
    const head = this.buffered.toString('latin1', 0, headEnd);
    const declared = /\r\ncontent-length: *(\d+)/i.exec(head)?.[1];
    if (declared === undefined) return this.fail(new Error(`an answer without content-length: ${head.split('\r\n')[0]}`));
    const length = Number(declared);
    if (this.buffered.length < headEnd + 4 + length) return;
    const body = this.buffered.toString('utf8', headEnd + 4, headEnd + 4 + length);
    this.buffered = this.buffered.subarray(headEnd + 4 + length);
    const retryAfter = /\r\nretry-after: *(\d+)/i.exec(head)?.[1];
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.resolve({ status: Number(head.slice(9, 12)), retryAfter: retryAfter === undefined ? undefined : Number(retryAfter), body });
  }
}
