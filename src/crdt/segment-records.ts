import { decodeJson, encodeJson } from '../storage/store.js'
import type { KVStore, StoreWrite } from '../storage/store.js'

/** What the store holds about a segment beside its document (`seg:<id>`). */
export interface SegmentInfo {
  id: string
  creator: string
  sealed: boolean
  /** The creator's count of segments before this one: with a job's position, its submit order. */
  index: number
  /** Digest of the document's heads when it was sealed. */
  heads?: string
  /** Removed by `meshq gc`: gone from the store, and refused from peers. */
  dropped?: boolean
}

// The store layout of segments apart from their documents: the record of each, and for a sealed
// one the final job records that listings read and the summaries that stay in memory.
const INFO_PREFIX = 'seg:'
const infoKey = (id: string): string => `${INFO_PREFIX}${id}`
const recordsKey = (id: string): string => `sealed:${id}`
const SUMMARY_PREFIX = 'sealsum:'
const summaryKey = (id: string): string => `${SUMMARY_PREFIX}${id}`

export const infoWrite = (info: SegmentInfo): StoreWrite => ({ key: infoKey(info.id), value: encodeJson(info) })

/** The writes that store a sealed segment's job records and summary, with its record. */
export function sealWrites (info: SegmentInfo, records: unknown[], summary: unknown): StoreWrite[] {
  return [
    { key: recordsKey(info.id), value: encodeJson(records) },
    { key: summaryKey(info.id), value: encodeJson(summary) },
    infoWrite(info)
  ]
}

/** The writes that remove a segment's sealed job records and summary (unsealed or dropped), with its new record. */
export function clearSealedWrites (info: SegmentInfo): StoreWrite[] {
  return [
    { key: recordsKey(info.id), value: undefined },
    { key: summaryKey(info.id), value: undefined },
    infoWrite(info)
  ]
}

/** Every segment's record, with the id its key names. */
export async function * segmentInfos (store: KVStore): AsyncIterable<[string, SegmentInfo]> {
  for await (const [key, value] of store.entries(INFO_PREFIX)) yield [key.slice(INFO_PREFIX.length), decodeJson<SegmentInfo>(value)]
}

export async function * sealedSummaries<T> (store: KVStore): AsyncIterable<T> {
  for await (const [, value] of store.entries(SUMMARY_PREFIX)) yield decodeJson<T>(value)
}

export async function sealedRecords<T> (store: KVStore, id: string): Promise<T[]> {
  const bytes = await store.get(recordsKey(id))
  return bytes == null ? [] : decodeJson<T[]>(bytes)
}
