import ws from 'ws';
import { textFrame } from '../../src/http/websocket-frame';

/** ws's own frame builder: the package exports it, its type declarations do not. */
const { Sender } = ws as unknown as { Sender: { frame(data: Buffer, options: Record<string, unknown>): Buffer[] } };

/** The frame `ws` itself sends for a server's text message, as one buffer. */
const framedByWs = (text: Buffer) => Buffer.concat(Sender.frame(text, { fin: true, opcode: 1, mask: false, readOnly: true, rsv1: false }));

describe('a text frame built in one buffer', () => {
  test.each([0, 1, 125, 126, 127, 65_535, 65_536, 70_000])('is the frame ws sends, for %i bytes', (length) => {
    const text = Buffer.alloc(length, 'x');
    expect(textFrame([text]).equals(framedByWs(text))).toBe(true);
  });

  test('joins its parts in order, UTF-8 bytes counted, not characters', () => {
    const parts = [Buffer.from('{"id":"é",'), Buffer.from('"payload":{"n":1}'), Buffer.from('}')];
    const frame = textFrame(parts);
    expect(frame.equals(framedByWs(Buffer.concat(parts)))).toBe(true);
    expect(frame.subarray(2).toString()).toBe('{"id":"é","payload":{"n":1}}');
  });
});
