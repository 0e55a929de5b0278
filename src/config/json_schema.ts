/**
 * The JSON Schema (2020-12) of config.yaml, built from the declaration that
 * validates it (`schema.ts`): each key's description, default, bounds and
 * words come from its field and kind, so the two cannot drift apart.
 *
 * @module
 */

import { descriptionOf, ENV_REFERENCE_SCHEMA, type JsonSchema, type Kind } from "./kinds.ts";
import { CONFIG_FIELDS } from "./schema.ts";
import { AS_EMPTY, type Fields, REQUIRED, sectionFields } from "./section.ts";

/** Where editors find the schema: the file committed beside config.yaml. */
export const SCHEMA_FILE = "config.schema.json";

/**
 * The schema of config.yaml. Cross-key rules (a requeue_delay above
 * max_requeue_delay, duplicate entries, a listen address without a token)
 * and whether a worker module exists are for `nsqworker check` to say.
 *
 * @example
 * ```ts
 * console.log(JSON.stringify(configJsonSchema(), null, 2));
 * ```
 */
export function configJsonSchema(): JsonSchema {
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    title: "nsqworker config.yaml",
    ...fieldsSchema(CONFIG_FIELDS),
    $defs: { env_reference: ENV_REFERENCE_SCHEMA },
  };
}

function schemaOf(kind: Kind<unknown>): JsonSchema {
  const fields = sectionFields(kind);
  if (fields !== undefined) return fieldsSchema(fields);
  const described = descriptionOf(kind);
  if (described === undefined) throw new TypeError("a config kind has no schema description");
  return described.schema(schemaOf);
}

/** A mapping of declared keys; empty counts as empty, unknown keys are refused. */
function fieldsSchema(fields: Fields): JsonSchema {
  const properties: Record<string, JsonSchema> = {};
  const required: string[] = [];
  for (const [key, field] of Object.entries(fields)) {
    const property: Record<string, unknown> = {
      ...schemaOf(field.kind),
      description: field.description,
    };
    if (field.fallback === REQUIRED) required.push(key);
    else if (field.fallback !== AS_EMPTY) {
      const asWritten = descriptionOf(field.kind)?.asWritten as
        | ((value: unknown) => unknown)
        | undefined;
      property.default = asWritten ? asWritten(field.fallback) : field.fallback;
    }
    properties[key] = property;
  }
  return {
    type: required.length > 0 ? "object" : ["object", "null"],
    properties,
    additionalProperties: false,
    ...(required.length > 0 ? { required } : {}),
  };
}
