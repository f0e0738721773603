// Bytes for a reader, and bytes from the hex the platform writes digests and seeds in.

/** A size in bytes for a reader: 512 B, 12.3 KB, 4.5 MB, 1.25 GB (1 KB = 1024 bytes). */
export function formatSize(count) {
  if (count < 1024) return `${count} B`;
  if (count < 1024 * 1024) return `${(count / 1024).toFixed(1)} KB`;
  if (count < 1024 * 1024 * 1024) return `${(count / 1024 / 1024).toFixed(1)} MB`;
  return `${(count / 1024 / 1024 / 1024).toFixed(2)} GB`;
}

/** Lowercase hex to bytes; throws on anything else (odd length, other characters). */
export function hexToBytes(text) {
  if (typeof text !== "string" || !/^([0-9a-f]{2})*$/.test(text)) throw new TypeError("not hex");
  return Uint8Array.from(text.match(/../g) ?? [], (pair) => Number.parseInt(pair, 16));
}
