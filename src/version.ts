import project from "../deno.json" with { type: "json" };

/** This release of nsqworker (deno.json's `version`). */
export const VERSION: string = project.version;
