/**
 * The stats nsqd reports at `GET /stats?format=json`, the subset tests use,
 * with every field present (nsqd leaves some out).
 *
 * @module
 */

/** Per-client counters from nsqd's `/stats`. */
export interface ClientStats {
  readonly client_id: string;
  readonly user_agent: string;
  readonly ready_count: number;
  readonly in_flight_count: number;
  readonly finish_count: number;
  readonly requeue_count: number;
  readonly message_count: number;
}

/** Per-channel counters from nsqd's `/stats`. */
export interface ChannelStats {
  readonly channel_name: string;
  /** Messages waiting to be sent (memory and disk), excluding in-flight and deferred ones. */
  readonly depth: number;
  readonly in_flight_count: number;
  /** Messages requeued with a delay that has not passed yet. */
  readonly deferred_count: number;
  readonly requeue_count: number;
  readonly timeout_count: number;
  readonly message_count: number;
  readonly clients: readonly ClientStats[];
}

/** Per-topic counters from nsqd's `/stats`. */
export interface TopicStats {
  readonly topic_name: string;
  /** Messages published to the topic since nsqd started. */
  readonly message_count: number;
  /** Messages held by the topic itself (it has no channel yet, or is paused). */
  readonly depth: number;
  readonly channels: readonly ChannelStats[];
}

/** The subset of nsqd's `GET /stats?format=json` that tests use. */
export interface NsqdStats {
  readonly topics: readonly TopicStats[];
}

/** Parses nsqd's `/stats?format=json` body; fields nsqd left out read as 0, `""` or empty. */
export function parseStats(json: string): NsqdStats {
  const raw = JSON.parse(json) as RawStats;
  return { topics: (raw.topics ?? []).map(toTopicStats) };
}

interface RawClient {
  client_id?: string;
  user_agent?: string;
  ready_count?: number;
  in_flight_count?: number;
  finish_count?: number;
  requeue_count?: number;
  message_count?: number;
}
interface RawChannel {
  channel_name?: string;
  depth?: number;
  in_flight_count?: number;
  deferred_count?: number;
  requeue_count?: number;
  timeout_count?: number;
  message_count?: number;
  clients?: RawClient[] | null;
}
interface RawTopic {
  topic_name?: string;
  message_count?: number;
  depth?: number;
  channels?: RawChannel[] | null;
}
interface RawStats {
  topics?: RawTopic[] | null;
}

function toTopicStats(t: RawTopic): TopicStats {
  return {
    topic_name: t.topic_name ?? "",
    message_count: t.message_count ?? 0,
    depth: t.depth ?? 0,
    channels: (t.channels ?? []).map((c) => ({
      channel_name: c.channel_name ?? "",
      depth: c.depth ?? 0,
      in_flight_count: c.in_flight_count ?? 0,
      deferred_count: c.deferred_count ?? 0,
      requeue_count: c.requeue_count ?? 0,
      timeout_count: c.timeout_count ?? 0,
      message_count: c.message_count ?? 0,
      clients: (c.clients ?? []).map((k) => ({
        client_id: k.client_id ?? "",
        user_agent: k.user_agent ?? "",
        ready_count: k.ready_count ?? 0,
        in_flight_count: k.in_flight_count ?? 0,
        finish_count: k.finish_count ?? 0,
        requeue_count: k.requeue_count ?? 0,
        message_count: k.message_count ?? 0,
      })),
    })),
  };
}
