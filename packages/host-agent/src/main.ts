#!/usr/bin/env node
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { createLogger, WrennError } from "@wrenn/shared";
import { type AgentConfig, agentConfigFromEnv, parseAgentConfig } from "./config.js";
import { AGENT_USAGE, type AgentArgs, parseAgentArgs } from "./cp-link/agent-args.js";
import { ControlPlaneClient } from "./cp-link/control-plane-client.js";
import { ControlPlaneLink } from "./cp-link/control-plane-link.js";
import { enrolAgent } from "./cp-link/enrol-agent.js";
import { createHostAgent, probeAccelFromConfig } from "./create-agent.js";
import { ensureAgentIdentity, identityDirOf } from "./identity/agent-identity.js";
import { type Enrolment, readEnrolment } from "./identity/enrolment-file.js";

// The only place the agent reads its environment (through agentConfigFromEnv).
const logger = createLogger({ fields: { svc: "wrenn-agent" } });

function fail(message: string, code = 2): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

let args: AgentArgs;
try {
  args = parseAgentArgs(process.argv.slice(2), process.env);
} catch (err) {
  fail(`${(err as Error).message}\n${AGENT_USAGE}`);
}

if (args.command === "probe-accel") {
  // Used by `wrenn doctor`: one JSON line with the verdict.
  const verdict = await probeAccelFromConfig(agentConfigFromEnv(process.env));
  process.stdout.write(`${JSON.stringify(verdict)}\n`);
  process.exit(0);
}

const raw = agentConfigFromEnv(process.env);
if (args.controlPlaneUrl) raw.controlPlaneUrl = args.controlPlaneUrl;
if (args.advertiseUrl) raw.advertiseUrl = args.advertiseUrl;
if (args.caPath) raw.controlPlaneCaPath = args.caPath;
if (Object.keys(args.tags).length > 0) raw.hostTags = { ...(raw.hostTags as object), ...args.tags };

/** The host the control plane dials: the advertise URL's, else the listen address (a wildcard: this machine's name). */
function advertiseHostOf(input: Record<string, unknown>): string {
  if (typeof input.advertiseUrl === "string") return new URL(input.advertiseUrl).hostname;
  const host = typeof input.host === "string" ? input.host : "127.0.0.1";
  return host === "0.0.0.0" || host === "::" ? hostname() : host;
}

// An enrolling or enrolled agent serves TLS with its own identity (unless given a certificate)
// and takes its RPC token from it (unless WRENN_AGENT_TOKEN sets one).
const identityDir = identityDirOf(String(raw.dataDir));
let enrolment: Enrolment | undefined;
try {
  enrolment = readEnrolment(identityDir);
} catch (err) {
  fail(`${identityDir}/enrolment.json is unreadable: ${(err as Error).message}`, 1);
}
if (args.register && enrolment) {
  fail(
    `this agent is enrolled already (host ${enrolment.host_id}, ${identityDir}/enrolment.json); start it without --register`,
  );
}
if (args.register || enrolment) {
  try {
    const identity = await ensureAgentIdentity(String(raw.dataDir), advertiseHostOf(raw));
    if (!raw.tlsCertPath && !raw.tlsKeyPath) {
      raw.tlsCertPath = identity.certPath;
      raw.tlsKeyPath = identity.keyPath;
    }
    if (!raw.hostToken) raw.hostToken = identity.agentToken;
  } catch (err) {
    fail(`wrenn-agent: ${(err as Error).message}`, 1);
  }
}

let config: AgentConfig;
try {
  config = parseAgentConfig(raw);
} catch (err) {
  fail(`wrenn-agent: invalid configuration: ${(err as Error).message}`);
}
const agent = await createHostAgent(config, logger);
// Tests and `wrenn up` read the bound port from this line.
process.stdout.write(`wrenn-agent listening on ${agent.port}\n`);
// `wrenn up` shows these lines: the first create from the default image waits for this build.
const snapshot = agent.defaultImageSnapshot;
if (snapshot.building) {
  process.stdout.write(`wrenn-agent preparing the ${snapshot.image} image snapshot…\n`);
  snapshot.ready.then(
    (done) =>
      process.stdout.write(
        `wrenn-agent ${snapshot.image} image snapshot ready in ${((done?.ms ?? 0) / 1000).toFixed(1)} s (${done?.fromCache ? "from the host cache" : "one cold boot"})\n`,
      ),
    (err: unknown) =>
      process.stdout.write(
        `wrenn-agent ${snapshot.image} image snapshot failed (creates will retry): ${err instanceof Error ? err.message : String(err)}\n`,
      ),
  );
}

if (args.register) {
  const advertiseUrl = config.advertiseUrl ?? `https://${advertiseHostOf(raw)}:${agent.port}`;
  const client = new ControlPlaneClient(config.controlPlaneUrl ?? "", config.controlPlaneCaPath ?? null);
  try {
    enrolment = await enrolAgent({
      client,
      identityDir,
      token: args.register,
      advertiseUrl,
      agentToken: config.hostToken,
      certPem: readFileSync(config.tlsCertPath ?? "", "utf8"),
      tags: config.hostTags,
    });
    process.stdout.write(`wrenn-agent enrolled as host ${enrolment.host_id} (${advertiseUrl})\n`);
  } catch (err) {
    const e = WrennError.from(err);
    process.stderr.write(`wrenn-agent enrolment failed [${e.code}]: ${e.message}\n`);
    client.close();
    // Sandboxes of an earlier life of this data dir keep running for the next agent.
    await agent.close({ destroySandboxes: false });
    process.exit(1);
  }
  client.close();
}

let link: ControlPlaneLink | undefined;
if (enrolment) {
  link = new ControlPlaneLink({
    client: new ControlPlaneClient(enrolment.control_plane_url, enrolment.control_plane_ca_path),
    identityDir,
    enrolment,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    certFingerprint: config.tlsCertPath
      ? new X509Certificate(readFileSync(config.tlsCertPath)).fingerprint256
      : "",
    logger,
  });
  link.start();
}

let stopping = false;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    // Sandboxes keep running across an agent restart; the next agent re-adopts them.
    Promise.resolve(link?.stop())
      .then(() => agent.close({ destroySandboxes: config.destroyOnExit }))
      .then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error("shutdown failed", { err });
          process.exit(1);
        },
      );
  });
}
