#!/usr/bin/env node
import { userInfo } from "node:os";
import { parseArgs } from "node:util";
import { createLogger } from "@wrenn/shared";
import { createEnvd } from "./create-envd.js";

// The only place envd reads its command line.
const { values } = parseArgs({
  options: {
    port: { type: "string", default: "49983" },
    host: { type: "string", default: "0.0.0.0" },
    "no-vm": { type: "boolean", default: false },
    user: { type: "string" },
    workdir: { type: "string" },
    "forward-host": { type: "string" },
  },
});

const noVm = values["no-vm"] ?? false;
const logger = createLogger({ fields: { svc: "envd" } });
const envd = await createEnvd(
  {
    port: Number(values.port),
    host: values.host,
    noVm,
    defaultUser: values.user ?? (noVm ? userInfo().username : "user"),
    defaultWorkdir: values.workdir,
    forwardHost: values["forward-host"],
    // The guest image's environment (e.g. NODE_EXTRA_CA_CERTS); a development host's is not ours.
    imageEnvFile: noVm ? undefined : "/etc/environment",
  },
  logger,
);
// Tests and the host agent read the bound port from this line.
process.stdout.write(`envd listening on ${envd.port}\n`);

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    envd.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
