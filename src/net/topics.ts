/**
 * The cluster's gossip topics (`meshq/<cluster>/<name>`). Every message is validated before
 * gossipsub delivers or forwards it: the schema (the topic's codec); that its author is a member
 * speaking for itself; that the peer it came from is a member (a key holder that is not one must
 * not relay members' recorded messages); and that it is not a replay of an earlier message of its
 * author (`ReplayGuard`). What a topic carries is its user's business: the claims wire format
 * stays with the claims (src/sched/claim-batch.ts), and the node hands its codec in.
 */
import createDebug from 'debug'
import type { PeerId } from '@libp2p/interface'
import { TopicValidatorResult } from './gossip.js'
import type { GossipMessage, GossipSub } from './gossip.js'
import type { Membership } from './membership.js'
import { ReplayGuard } from './replay.js'
import type { ReplayStamp } from './replay.js'

const log = createDebug('meshq:mesh')

/** How a topic's messages are read and checked. */
export interface GossipCodec<T> {
  /** The message, or undefined when it is malformed (too big, wrong shape). */
  decode: (data: Uint8Array) => T | undefined
  /** The peer the message speaks for: it must be its signer. */
  author: (message: T) => string
  stamp: (message: T) => ReplayStamp | undefined
}

/** A topic as its user sees it; messages published before the mesh starts are dropped. */
export interface GossipChannel<T> {
  publish: (message: T) => void
  subscribe: (handler: (message: T) => void) => void
}

interface Topic {
  codec: GossipCodec<unknown>
  handlers: Array<(message: unknown) => void>
}

export interface TopicsInit {
  clusterId: string
  membership: Membership
  /** A member's message was taken in (whatever its topic). */
  heard: (author: string) => void
}

export class GossipTopics {
  private readonly init: TopicsInit
  private readonly topics = new Map<string, Topic>()
  private pubsub?: GossipSub

  constructor (init: TopicsInit) {
    this.init = init
  }

  /** Declares a topic; every topic is declared before `start`. */
  channel<T> (name: string, codec: GossipCodec<T>): GossipChannel<T> {
    const topic = `meshq/${this.init.clusterId}/${name}`
    const entry: Topic = { codec: codec as GossipCodec<unknown>, handlers: [] }
    this.topics.set(topic, entry)
    return {
      publish: message => { this.publish(topic, message) },
      subscribe: handler => { entry.handlers.push(handler as (message: unknown) => void) }
    }
  }

  /** Subscribes to every declared topic, with its validator. */
  start (pubsub: GossipSub): void {
    for (const [topic, { codec }] of this.topics) {
      const replays = new ReplayGuard()
      pubsub.subscribe(topic)
      pubsub.topicValidators.set(topic, (from: PeerId, message) => this.validate(codec, replays, from, message))
    }
    pubsub.addEventListener('message', event => { this.deliver(event.detail.topic, event.detail.data) })
    this.pubsub = pubsub
  }

  stop (): void {
    this.pubsub = undefined
  }

  private validate (codec: GossipCodec<unknown>, replays: ReplayGuard, from: PeerId, message: GossipMessage): TopicValidatorResult {
    const { membership } = this.init
    const body = codec.decode(message.data)
    const author = message.type === 'signed' ? message.from.toString() : undefined
    if (body == null) return TopicValidatorResult.Reject
    if (author !== codec.author(body) || !membership.isMember(author) || !membership.isMember(from.toString())) {
      return TopicValidatorResult.Reject
    }
    return replays.fresh(author, codec.stamp(body)) ? TopicValidatorResult.Accept : TopicValidatorResult.Ignore
  }

  private deliver (topic: string, data: Uint8Array): void {
    const entry = this.topics.get(topic)
    const message = entry?.codec.decode(data)
    if (entry == null || message == null) return
    this.init.heard(entry.codec.author(message))
    for (const handler of entry.handlers) handler(message)
  }

  private publish (topic: string, message: unknown): void {
    void this.pubsub?.publish(topic, new TextEncoder().encode(JSON.stringify(message))).catch(err => {
      log('publish on %s failed: %s', topic, (err as Error).message)
    })
  }
}
