/**
 * The entry settings the kit uses when a test gives none: the config's own
 * defaults.
 *
 * @module
 */

import { SETTING_FIELDS } from "../config/schema.ts";

/** An entry's setting as the config declares it: one source for the defaults. */
export function settingDefault(key: keyof typeof SETTING_FIELDS): number {
  return SETTING_FIELDS[key].fallback as number;
}
