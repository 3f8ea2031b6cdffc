/** CRC32C (Castagnoli), slicing by 8, and the masked form LevelDB stores. */

const CRC_TABLE = crcTable()

function crcTable (): Uint32Array {
  const table = new Uint32Array(8 * 256)
  for (let i = 0; i < 256; i++) {
    let c = i
    for (let k = 0; k < 8; k++) c = (c & 1) !== 0 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1
    table[i] = c
  }
  for (let i = 0; i < 256; i++) {
    for (let s = 1; s < 8; s++) {
      const prev = table[(s - 1) * 256 + i]
      table[s * 256 + i] = (prev >>> 8) ^ table[prev & 0xff]
    }
  }
  return table
}

function crc32c (data: Uint8Array): number {
  const t = CRC_TABLE
  let crc = ~0
  let i = 0
  for (const end = data.length - (data.length & 7); i < end; i += 8) {
    const a = crc ^ (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24))
    crc = t[1792 + (a & 0xff)] ^ t[1536 + ((a >>> 8) & 0xff)] ^ t[1280 + ((a >>> 16) & 0xff)] ^ t[1024 + (a >>> 24)] ^
      t[768 + data[i + 4]] ^ t[512 + data[i + 5]] ^ t[256 + data[i + 6]] ^ t[data[i + 7]]
  }
  for (; i < data.length; i++) crc = t[(crc ^ data[i]) & 0xff] ^ (crc >>> 8)
  return ~crc >>> 0
}

/** The CRC as LevelDB stores it: rotated and offset, so that a CRC of data holding CRCs stays strong. */
export function maskedCrc32c (data: Uint8Array): number {
  const crc = crc32c(data)
  return (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0
}
