/**
 * Reading a request's JSON body without letting it stall the node: its shape is checked byte by
 * byte as it arrives (nesting depth, values, members of the top object), and a large body is
 * parsed one slice of its big array at a time, between turns of the event loop, so that claims
 * and lease renewals go on while it is parsed.
 */
import { setImmediate as nextTurn } from 'node:timers/promises'

/** Deeper nesting is refused: no request of the API nests more than a few levels. */
export const MAX_JSON_DEPTH = 32
/** Objects and arrays in one body, at most: about a million small jobs. */
export const MAX_JSON_CONTAINERS = 2 * 1024 * 1024
/** Members of the top object, at most. */
const MAX_TOP_MEMBERS = 64
/** A body this large is parsed in slices; so is no single piece larger than this (one job is at most 256 KiB). */
export const MAX_JSON_PIECE_BYTES = 1024 * 1024
/** The elements parsed in one turn: about this many bytes. */
const SLICE_BYTES = 128 * 1024

/** The body does not have a shape the API takes; `message` says why. */
export class JsonShapeError extends Error {
  override name = 'JsonShapeError'
}

const QUOTE = 0x22
const BACKSLASH = 0x5c
const OPEN_OBJECT = 0x7b
const CLOSE_OBJECT = 0x7d
const OPEN_ARRAY = 0x5b
const CLOSE_ARRAY = 0x5d
const COMMA = 0x2c
const COLON = 0x3a

/** Where the elements of the top object's largest array lie in the body. */
interface BigArray {
  /** Offsets of `[` and `]`. */
  open: number
  close: number
  /** The member's key, as JSON text offsets (quotes included). */
  keyStart: number
  keyEnd: number
  /** Offsets where each element's text starts (after `[` or `,`) and the last ends (`]`). */
  bounds: number[]
}

/**
 * Scans a JSON body chunk by chunk, refusing a shape the API never takes as soon as the byte that
 * shows it arrives. It does not validate the JSON (JSON.parse does): it only counts. UTF-8 bytes of
 * characters beyond ASCII are all >= 0x80, so they never look like structure.
 */
export class JsonShapeScanner {
  #offset = 0
  /** Container kinds, innermost last. */
  readonly #stack: number[] = []
  #inString = false
  #escaped = false
  #containers = 0
  #topMembers = 0
  #seenValue = false
  /** Offsets of the quotes of the latest string directly in the top object: the key, before an array. */
  #keyStart = -1
  #keyEnd = -1
  #array?: BigArray
  #biggest?: BigArray

  /** Scans the next chunk; throws JsonShapeError on a shape the API does not take. */
  push (chunk: Uint8Array): void {
    for (let i = 0; i < chunk.length; i++, this.#offset++) {
      const byte = chunk[i]
      if (this.#inString) this.#stringByte(byte)
      else this.#structureByte(byte)
    }
  }

  /** Whether the body so far is only whitespace (an empty body is `{}`). */
  get empty (): boolean {
    return !this.#seenValue
  }

  /** The largest array directly in the top object, once the whole body was pushed. */
  bigArray (): BigArray | undefined {
    return this.#biggest
  }

  #stringByte (byte: number): void {
    if (this.#escaped) this.#escaped = false
    else if (byte === BACKSLASH) this.#escaped = true
    else if (byte === QUOTE) {
      this.#inString = false
      if (this.#stack.length === 1) this.#keyEnd = this.#offset
    }
  }

  #structureByte (byte: number): void {
    const depth = this.#stack.length
    if (depth === 0 && byte > 0x20) {
      if (this.#seenValue || byte !== OPEN_OBJECT) throw new JsonShapeError('request body must be a JSON object')
      this.#seenValue = true
    }
    switch (byte) {
      case QUOTE:
        this.#inString = true
        if (depth === 1) this.#keyStart = this.#offset
        return
      case OPEN_OBJECT:
      case OPEN_ARRAY:
        this.#open(byte)
        return
      case CLOSE_OBJECT:
        this.#close(OPEN_OBJECT)
        return
      case CLOSE_ARRAY:
        this.#close(OPEN_ARRAY)
        return
      case COMMA:
        if (depth === 2 && this.#array !== undefined) this.#element(this.#array)
        return
      case COLON:
        if (depth === 1 && ++this.#topMembers > MAX_TOP_MEMBERS) {
          throw new JsonShapeError(`request body has more than ${MAX_TOP_MEMBERS} members`)
        }
    }
  }

  #open (kind: number): void {
    if (this.#stack.length >= MAX_JSON_DEPTH) throw new JsonShapeError(`request body nests deeper than ${MAX_JSON_DEPTH} levels`)
    if (++this.#containers > MAX_JSON_CONTAINERS) {
      throw new JsonShapeError(`request body has more than ${MAX_JSON_CONTAINERS} objects and arrays`)
    }
    if (this.#stack.length === 1 && kind === OPEN_ARRAY) {
      this.#array = { open: this.#offset, close: -1, keyStart: this.#keyStart, keyEnd: this.#keyEnd, bounds: [this.#offset + 1] }
    }
    this.#stack.push(kind)
  }

  #element (array: BigArray): void {
    if (array.bounds.length > MAX_JSON_CONTAINERS) {
      throw new JsonShapeError(`request body has an array of more than ${MAX_JSON_CONTAINERS} elements`)
    }
    array.bounds.push(this.#offset + 1)
  }

  #close (kind: number): void {
    if (this.#stack.pop() !== kind) throw new JsonShapeError('request body is not valid JSON: unbalanced brackets')
    const array = this.#array
    if (this.#stack.length !== 1 || array === undefined) return
    array.close = this.#offset
    array.bounds.push(this.#offset)
    if (array.close - array.open > (this.#biggest === undefined ? 0 : this.#biggest.close - this.#biggest.open)) this.#biggest = array
    this.#array = undefined
  }
}

/**
 * Parses a scanned body. A small one at once; a large one as its top object without its largest
 * array, then that array's elements a slice at a time, yielding to the event loop between slices.
 * Throws SyntaxError as JSON.parse does, or JsonShapeError when a piece is too large to parse at once.
 */
export async function parseScanned (body: Buffer, scanner: JsonShapeScanner): Promise<unknown> {
  const big = scanner.bigArray()
  if (body.length <= MAX_JSON_PIECE_BYTES) return JSON.parse(body.toString('utf8'))
  if (big === undefined) {
    throw new JsonShapeError(`a request body over ${MAX_JSON_PIECE_BYTES / 2 ** 20} MiB must be an object holding one big array`)
  }
  const withoutBig = body.subarray(0, big.open).toString('utf8') + '[]' + body.subarray(big.close + 1).toString('utf8')
  const outline = parsePiece(withoutBig) as Record<string, unknown>
  const key = JSON.parse(body.subarray(big.keyStart, big.keyEnd + 1).toString('utf8')) as string
  const elements: unknown[] = []
  const { bounds } = big
  let first = 0
  while (first < bounds.length - 1) {
    let last = first + 1
    while (last < bounds.length - 1 && bounds[last + 1] - bounds[first] <= SLICE_BYTES) last++
    const text = body.subarray(bounds[first], last === bounds.length - 1 ? bounds[last] : bounds[last] - 1).toString('utf8')
    const slice = parsePiece(`[${text}]`) as unknown[]
    for (const element of slice) elements.push(element)
    first = last
    await nextTurn()
  }
  outline[key] = elements
  return outline
}

/** Parses one piece of a large body, unless it is too large to parse without stalling the node. */
function parsePiece (text: string): unknown {
  if (text.length > MAX_JSON_PIECE_BYTES) {
    const mib = MAX_JSON_PIECE_BYTES / 2 ** 20
    throw new JsonShapeError(`a request body over ${mib} MiB must be an object holding one big array of values of at most ${mib} MiB each`)
  }
  return JSON.parse(text)
}
