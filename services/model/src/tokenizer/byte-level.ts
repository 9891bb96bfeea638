/**
 * GPT-2's byte-level alphabet: each byte maps to one printable code point, so BPE works on strings.
 * Printable Latin-1 bytes map to themselves; the rest to U+0100 onwards, in byte order.
 */
function buildByteToChar(): string[] {
  const printable: number[] = [];
  const ranges: [number, number][] = [
    [0x21, 0x7e],
    [0xa1, 0xac],
    [0xae, 0xff],
  ];
  for (const [from, to] of ranges) for (let b = from; b <= to; b++) printable.push(b);
  const table: string[] = new Array(256);
  let next = 0;
  for (let byte = 0; byte < 256; byte++) {
    table[byte] = String.fromCodePoint(printable.includes(byte) ? byte : 256 + next++);
  }
  return table;
}

export const BYTE_TO_CHAR: readonly string[] = buildByteToChar();
const CHAR_TO_BYTE = new Map(BYTE_TO_CHAR.map((char, byte) => [char, byte]));

/** The raw bytes a vocabulary entry stands for; null for entries outside the byte alphabet (special tokens). */
export function tokenBytes(token: string): Uint8Array | null {
  const bytes = new Uint8Array(token.length);
  let n = 0;
  for (const char of token) {
    const byte = CHAR_TO_BYTE.get(char);
    if (byte === undefined) return null;
    bytes[n++] = byte;
  }
  return bytes.subarray(0, n);
}

/**
 * Text for showing one token on its own. A token can be part of a multi-byte UTF-8 character (GPT-2
 * splits many emoji and CJK characters); those bytes are shown as \xNN escapes instead of U+FFFD, so
 * no two different tokens look the same.
 */
export function displayBytes(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const length = utf8SequenceLength(bytes, i);
    if (length > 0) {
      out += Buffer.from(bytes.subarray(i, i + length)).toString('utf8');
      i += length;
    } else {
      out += `\\x${bytes[i].toString(16).padStart(2, '0')}`;
      i += 1;
    }
  }
  return out;
}

/** Length of a complete, well-formed UTF-8 sequence starting at `i`, or 0. */
function utf8SequenceLength(bytes: Uint8Array, i: number): number {
  const lead = bytes[i];
  if (lead < 0x80) return 1;
  let length: number;
  let min: number;
  if (lead >= 0xc2 && lead <= 0xdf) [length, min] = [2, 0x80];
  else if (lead >= 0xe0 && lead <= 0xef) [length, min] = [3, 0x800];
  else if (lead >= 0xf0 && lead <= 0xf4) [length, min] = [4, 0x10000];
  else return 0;
  if (i + length > bytes.length) return 0;
  let codePoint = lead & (0xff >> (length + 1));
  for (let k = 1; k < length; k++) {
    const next = bytes[i + k];
    if ((next & 0xc0) !== 0x80) return 0;
    codePoint = (codePoint << 6) | (next & 0x3f);
  }
  if (codePoint < min || codePoint > 0x10ffff || (codePoint >= 0xd800 && codePoint <= 0xdfff)) return 0;
  return length;
}
