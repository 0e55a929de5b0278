/**
 * A headless Chromium for the page's tests, driven by puppeteer-core (no
 * browser download: the system's Chromium). Without one the tests fail
 * with a message saying how to install it; they never skip.
 *
 * @module
 */

import puppeteer, { type Browser } from "puppeteer-core";

/** Where a Chromium is looked for, after `CHROME_BIN`. */
const CANDIDATES = [
  "/usr/bin/chromium",
  "/usr/bin/chromium-browser",
  "/usr/bin/google-chrome",
  "/usr/bin/google-chrome-stable",
];

/** The Chromium to drive: `CHROME_BIN`, else the first of the usual paths that exists. */
export function findChromium(): string {
  const fromEnv = Deno.env.get("CHROME_BIN");
  const candidates = fromEnv ? [fromEnv] : CANDIDATES;
  for (const path of candidates) {
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // Not there; the next one may be.
    }
  }
  throw new Error(
    `the page's tests need a headless Chromium, and none is at ${candidates.join(", ")}: ` +
      "install it (Debian/Ubuntu: apt-get install chromium; .ci/run does) or set CHROME_BIN",
  );
}

/** Launches a headless Chromium; close it with `browser.close()`. */
export async function launchBrowser(): Promise<Browser> {
  return await puppeteer.launch({
    executablePath: findChromium(),
    headless: true,
    // Containers run tests as root, where Chromium's sandbox cannot start.
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    defaultViewport: { width: 1280, height: 900 },
  });
}
