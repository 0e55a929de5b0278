/**
 * The items of `workers:`: each read over the settings of `defaults:`, with
 * the checks that need the topic prefix or the other entries.
 *
 * @module
 */

import { isNsqName, MAX_NAME_LENGTH, NSQ_NAME_RULE } from "./names.ts";
import { type At, INVALID, type Invalid } from "./reader.ts";
import { checkSettings, ENTRY_FIELDS, SETTING_FIELDS } from "./schema.ts";
import { complete, readSection, type ReadValues, type Section } from "./section.ts";
import type { Entry, WorkerReference } from "./types.ts";

type Settings = ReadValues<typeof SETTING_FIELDS>;

/** The entries, and the `worker:` of each that has a readable one. */
export interface ReadEntries {
  readonly entries: Entry[] | Invalid;
  readonly references: WorkerReference[];
}

/**
 * Reads every entry. `defaults` is INVALID when `defaults:` is not a mapping;
 * `prefix` is INVALID when `nsq:` could not be read, and the checks that need
 * it are then skipped.
 */
export function readEntries(
  items: readonly At[],
  defaults: Section<typeof SETTING_FIELDS> | Invalid,
  prefix: string | Invalid,
): ReadEntries {
  if (defaults !== INVALID && prefix !== INVALID) checkFixedDeadLetter(defaults, prefix);
  const inherited = defaults === INVALID ? allInvalid() : defaults.values;
  const firstAt = new Map<string, At>();
  const references: WorkerReference[] = [];
  const entries: (Entry | Invalid)[] = items.map((at, index) => {
    const s = readSection(at, ENTRY_FIELDS, inherited);
    if (s === INVALID) return INVALID;
    const { worker, options } = s.values;
    const workerAt = s.present.get("worker");
    if (worker !== INVALID && workerAt !== undefined) {
      const location = workerAt.location();
      references.push({
        index,
        name: worker,
        location,
        options: options === INVALID ? null : options,
      });
    }
    checkSettings(s);
    checkBatchSize(s);
    checkChildSettings(s);
    checkDuplicate(s, firstAt);
    return prefix === INVALID ? INVALID : entry(s, prefix);
  });
  return {
    entries: entries.some((e) => e === INVALID) ? INVALID : entries as Entry[],
    references,
  };
}

function allInvalid(): Settings {
  const values: Record<string, Invalid> = {};
  for (const { prop } of Object.values(SETTING_FIELDS)) values[prop] = INVALID;
  return values as Settings;
}

/**
 * A default dead letter topic without `{topic}` is the same for every entry,
 * so it is checked (with the prefix) once, where it is written.
 */
function checkFixedDeadLetter(defaults: Section<typeof SETTING_FIELDS>, prefix: string): void {
  const template = defaults.values.deadLetterTopic;
  const at = defaults.present.get("dead_letter_topic");
  if (typeof template !== "string" || template.includes("{topic}") || at === undefined) return;
  const resolved = prefix + template;
  if (isNsqName(resolved)) return;
  at.fail(
    `gives the dead letter topic ${JSON.stringify(resolved)}, which is not a valid topic name ` +
      `(${NSQ_NAME_RULE})`,
  );
}

/** A batch must be able to fill: its size is at most the messages the entry takes at once. */
function checkBatchSize(s: Section<typeof ENTRY_FIELDS>): void {
  const { batch, maxInFlight } = s.values;
  if (batch === INVALID || batch === null || batch.size === null || maxInFlight === INVALID) return;
  if (batch.size <= maxInFlight) return;
  const found = s.present.get("batch")?.found();
  const sizeAt = found !== undefined && found !== INVALID && found.shape === "mapping"
    ? found.entries.find((e) => e.key === "size")?.at
    : undefined;
  (sizeAt ?? s.at).fail(
    `must be at most max_in_flight (${maxInFlight}), or the batch could never fill, got ${batch.size}`,
  );
}

/**
 * `memory_limit` and `kill_grace` bound child processes: written on an entry
 * without any, they would promise a protection that does not happen.
 */
function checkChildSettings(s: Section<typeof ENTRY_FIELDS>): void {
  if (s.values.processes !== 0) return;
  for (const key of ["memory_limit", "kill_grace"] as const) {
    const at = s.present.get(key);
    if (at === undefined || (key === "memory_limit" && s.values.memoryLimitMib === null)) continue;
    at.fail(`applies only with processes of 1 or more, and this entry's processes is 0`);
  }
}

/** Two entries on one topic and channel would share (and split) its messages. */
function checkDuplicate(s: Section<typeof ENTRY_FIELDS>, firstAt: Map<string, At>): void {
  const { topic, channel } = s.values;
  if (topic === INVALID || channel === INVALID) return;
  const key = JSON.stringify([topic, channel]);
  const first = firstAt.get(key);
  if (first === undefined) {
    firstAt.set(key, s.at);
    return;
  }
  s.at.report(
    `${s.at.path} repeats topic ${JSON.stringify(topic)} channel ${JSON.stringify(channel)} ` +
      `of ${first.path} (line ${first.location().line})`,
  );
}

function entry(s: Section<typeof ENTRY_FIELDS>, prefix: string): Entry | Invalid {
  const values = complete(s.values);
  const topicAt = s.present.get("topic");
  const workerAt = s.present.get("worker");
  if (values === INVALID || topicAt === undefined || workerAt === undefined) return INVALID;
  const nsqTopic = prefix + values.topic;
  if (!isNsqName(nsqTopic)) {
    return topicAt.fail(
      `with topic_prefix ${JSON.stringify(prefix)} is ${JSON.stringify(nsqTopic)}, ` +
        `${nsqTopic.length} characters: NSQ allows at most ${MAX_NAME_LENGTH}`,
    );
  }
  const deadLetterTopic = resolveDeadLetter(s, values.deadLetterTopic, values.topic, prefix);
  if (deadLetterTopic === INVALID) return INVALID;
  return { ...values, nsqTopic, deadLetterTopic, workerLocation: workerAt.location() };
}

/**
 * The dead letter topic of an entry. When it is not a valid topic, the
 * problem is reported where it can be fixed: at the entry's own
 * `dead_letter_topic`, or at its topic when the template comes from
 * `defaults:` (a template without `{topic}` is checked once, at defaults).
 */
function resolveDeadLetter(
  s: Section<typeof ENTRY_FIELDS>,
  template: string | null,
  topic: string,
  prefix: string,
): string | null | Invalid {
  if (template === null) return null;
  const resolved = prefix + template.replaceAll("{topic}", topic);
  if (isNsqName(resolved)) return resolved;
  const own = s.present.get("dead_letter_topic");
  const problem = `is not a valid topic name (${NSQ_NAME_RULE})`;
  if (own !== undefined) {
    return own.fail(`gives the dead letter topic ${JSON.stringify(resolved)}, which ${problem}`);
  }
  if (!template.includes("{topic}")) return INVALID;
  return (s.present.get("topic") ?? s.at).fail(
    `gives the dead letter topic ${JSON.stringify(resolved)} (from defaults.dead_letter_topic), ` +
      `which ${problem}: set dead_letter_topic on this entry`,
  );
}
