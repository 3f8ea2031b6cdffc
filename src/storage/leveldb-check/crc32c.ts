/**
 * LevelDB's checksum: CRC32C (Castagnoli) from @node-rs/crc32 (prebuilt binaries, no compiler at
 * install), masked as LevelDB stores it. It replaced a hand-written slicing-by-8 CRC32C in JS:
 * measured on the 20.3 MB store of bench/store-check.js, the CRC of all its files in 4 KiB pieces took
 * 5.0 ms instead of 13.4 ms (@aws-crypto/crc32c, pure JS: 210 ms), and the check of a starting node
 * (loading the modules, then one check; medians of 15 new processes, taken in turns on a busy machine)
 * took 146 ms of CPU instead of 167 ms, although loading the binary costs about 10 ms more.
 */
import { crc32c } from '@node-rs/crc32'

/** The CRC as LevelDB stores it: rotated and offset, so that a CRC of data holding CRCs stays strong. */
export function maskedCrc32c (data: Uint8Array): number {
  const crc = crc32c(data)
  return (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0
}
