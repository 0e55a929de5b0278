/**
 * Test certificates made by openssl in a temporary directory: a CA, and a
 * server and a client certificate it signed, for 127.0.0.1.
 *
 * @module
 */

import type { TempDir } from "./daemon_process.ts";

async function openssl(dir: TempDir, ...args: string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command("openssl", {
    args,
    cwd: dir.path,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code !== 0) throw new Error(`openssl ${args.join(" ")}: ${new TextDecoder().decode(stderr)}`);
}

/**
 * Writes `<name>-ca.pem`, `<name>-server.pem|key` and `<name>-client.pem|key`
 * in `dir`: a CA named `name`, and `server` and `client` certificates it signed.
 */
export async function makeCertificates(dir: TempDir, name: string): Promise<void> {
  const key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await openssl(
    dir,
    "req",
    "-x509",
    ...key,
    "-keyout",
    `${name}-ca.key`,
    "-out",
    `${name}-ca.pem`,
    "-days",
    "1",
    "-subj",
    `/CN=${name} test CA`,
  );
  for (const role of ["server", "client"]) {
    await openssl(
      dir,
      "req",
      ...key,
      "-keyout",
      `${name}-${role}.key`,
      "-out",
      `${name}-${role}.csr`,
      "-subj",
      `/CN=${role}`,
    );
    await Deno.writeTextFile(dir.join(`${role}.ext`), "subjectAltName=IP:127.0.0.1\n");
    await openssl(
      dir,
      "x509",
      "-req",
      "-in",
      `${name}-${role}.csr`,
      "-CA",
      `${name}-ca.pem`,
      "-CAkey",
      `${name}-ca.key`,
      "-CAcreateserial",
      "-days",
      "1",
      "-extfile",
      `${role}.ext`,
      "-out",
      `${name}-${role}.pem`,
    );
  }
}

/** `startRedis`'s `tls` for a server with `name`'s certificate, verifying clients with its CA. */
export function redisServerTls(dir: TempDir, name: string) {
  return {
    certFile: dir.join(`${name}-server.pem`),
    keyFile: dir.join(`${name}-server.key`),
    caFile: dir.join(`${name}-ca.pem`),
    authClients: true,
  };
}
