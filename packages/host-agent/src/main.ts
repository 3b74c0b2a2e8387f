#!/usr/bin/env node
import { createLogger } from "@wrenn/shared";
import { agentConfigFromEnv, parseAgentConfig } from "./config.js";
import { createHostAgent, probeAccelFromConfig } from "./create-agent.js";

// The only place the agent reads its environment (through agentConfigFromEnv).
const logger = createLogger({ fields: { svc: "wrenn-agent" } });
const command = process.argv[2] ?? "serve";

if (command === "probe-accel") {
  // Used by `wrenn doctor`: one JSON line with the verdict.
  const verdict = await probeAccelFromConfig(agentConfigFromEnv(process.env));
  process.stdout.write(`${JSON.stringify(verdict)}\n`);
  process.exit(0);
}

if (command !== "serve") {
  process.stderr.write("usage: wrenn-agent [serve|probe-accel]\n");
  process.exit(2);
}

const config = parseAgentConfig(agentConfigFromEnv(process.env));
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

let stopping = false;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    // Sandboxes keep running across an agent restart; the next agent re-adopts them.
    agent.close({ destroySandboxes: config.destroyOnExit }).then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error("shutdown failed", { err });
        process.exit(1);
      },
    );
  });
}
