/**
 * The guests' envd for SandboxManager's unit tests: one HTTP server; each sandbox's
 * host-reachable address is its own 127.x.y.z, so a request's local address names the
 * sandbox's slot.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Process } from "@wrenn/proto";

export interface InitCall {
  address: string;
  token: string | undefined;
  body: { envVars: Record<string, string>; accessToken?: string; entropy?: string; timestamp: string };
}

/**
 * The guests' envd, as far as the agent's start and pause need it: /health, /init,
 * /snapshot/prepare, and process Start (records the command, answers exit code 0).
 */
export class FakeEnvd {
  readonly inits: InitCall[] = [];
  /** `bash -c` commands started through process.Process/Start, with the address they reached. */
  readonly commands: { address: string; command: string }[] = [];
  healthy = true;
  /** Answer /init with this HTTP status instead of 204. */
  initStatus = 204;
  private constructor(private readonly server: Server) {}

  static async start(): Promise<FakeEnvd> {
    const server = createServer();
    const envd = new FakeEnvd(server);
    server.on("request", (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        if (req.url === "/health") {
          res.writeHead(envd.healthy ? 204 : 503).end();
        } else if (req.url === "/init") {
          envd.inits.push({
            address: req.socket.localAddress?.replace(/^::ffff:/, "") ?? "",
            token: req.headers["x-access-token"] as string | undefined,
            body: JSON.parse(Buffer.concat(chunks).toString("utf8")) as InitCall["body"],
          });
          res
            .writeHead(envd.initStatus)
            .end(envd.initStatus === 204 ? undefined : '{"message":"init broke"}');
        } else if (req.url === "/snapshot/prepare") {
          res.writeHead(204).end();
        } else if (req.url === "/process.Process/Start") {
          envd.commands.push({
            address: req.socket.localAddress?.replace(/^::ffff:/, "") ?? "",
            command: startedCommand(Buffer.concat(chunks)),
          });
          res.writeHead(200, { "content-type": "application/connect+proto" }).end(startStream());
        } else {
          res.writeHead(404).end();
        }
      });
    });
    // Every 127.x address reaches a socket bound to 0.0.0.0 (the whole of 127/8 is loopback).
    await new Promise<void>((resolve) => server.listen(0, "0.0.0.0", resolve));
    return envd;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/** The `-c` argument of a Connect-enveloped process Start request. */
function startedCommand(body: Buffer): string {
  const request = fromBinary(Process.method.start.input, body.subarray(5));
  const args = request.process?.args ?? [];
  return args[args.indexOf("-c") + 1] ?? "";
}

/** A Connect server stream: a process starts, then exits with code 0. */
function startStream(): Buffer {
  const envelope = (flags: number, data: Uint8Array) => {
    const head = Buffer.alloc(5);
    head.writeUInt8(flags, 0);
    head.writeUInt32BE(data.length, 1);
    return Buffer.concat([head, data]);
  };
  const { output } = Process.method.start;
  const started = create(output, { event: { event: { case: "start", value: { pid: 7 } } } });
  const ended = create(output, {
    event: { event: { case: "end", value: { exitCode: 0, exited: true, status: "exit status 0" } } },
  });
  return Buffer.concat([
    envelope(0, toBinary(output, started)),
    envelope(0, toBinary(output, ended)),
    envelope(2, Buffer.from("{}")),
  ]);
}
