import type { ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { type Process, Signal } from "@wrenn/proto";
import type { EnvdContext } from "../context.js";
import type { ManagedProcess } from "./managed-process.js";
import { deliverInput, toProcessError } from "./process-input.js";
import { ProcessRegistry } from "./process-registry.js";
import { followProcess, keepaliveIntervalMs } from "./process-stream.js";
import { createRunAs } from "./run-as.js";
import { startProcess } from "./start-process.js";

/** envd's process.Process service: start, follow, list, feed, signal and resize processes. */
export function createProcessService(ctx: EnvdContext): Partial<ServiceImpl<typeof Process>> {
  const registry = new ProcessRegistry();
  const runAs = createRunAs(ctx.logger, process.getuid?.());

  return {
    async *start(req, hctx) {
      const { proc, subscription } = await startProcess({ ctx, registry, runAs }, req, hctx);
      yield* followProcess(
        proc.pid,
        subscription,
        hctx,
        keepaliveIntervalMs(hctx, ctx.config.keepaliveIntervalMs),
      );
    },

    async *connect(req, hctx) {
      const proc = registry.getForConnect(req.process);
      const subscription = proc.subscribe();
      yield* followProcess(
        proc.pid,
        subscription,
        hctx,
        keepaliveIntervalMs(hctx, ctx.config.keepaliveIntervalMs),
      );
    },

    async list() {
      return {
        processes: registry.list().map((p) => ({
          pid: p.pid,
          ...(p.tag !== undefined ? { tag: p.tag } : {}),
          config: {
            cmd: p.description.cmd,
            args: p.description.args,
            envs: p.description.envs,
            ...(p.description.cwd !== undefined ? { cwd: p.description.cwd } : {}),
          },
        })),
      };
    },

    async sendInput(req) {
      await deliverInput(registry.get(req.process), req.input);
      return {};
    },

    async streamInput(requests) {
      let proc: ManagedProcess | undefined;
      for await (const req of requests) {
        const event = req.event;
        if (event.case === "start") {
          proc = registry.get(event.value.process);
        } else if (event.case === "data") {
          if (!proc)
            throw new ConnectError("input stream must begin with a start event", Code.InvalidArgument);
          await deliverInput(proc, event.value.input);
        } else if (event.case !== "keepalive") {
          throw new ConnectError("input stream event must be start, data or keepalive", Code.InvalidArgument);
        }
      }
      return {};
    },

    async sendSignal(req) {
      const proc = registry.get(req.process);
      if (req.signal === Signal.SIGKILL) proc.signal("SIGKILL");
      else if (req.signal === Signal.SIGTERM) proc.signal("SIGTERM");
      // E2B's envd answers Unimplemented here; an unusable value is the caller's bad input.
      else throw new ConnectError(`invalid signal: ${req.signal}`, Code.InvalidArgument);
      return {};
    },

    async update(req) {
      const proc = registry.get(req.process);
      const size = req.pty?.size;
      if (req.pty) {
        if (!size || size.cols < 1 || size.rows < 1 || size.cols > 0xffff || size.rows > 0xffff) {
          throw new ConnectError("pty size needs cols and rows between 1 and 65535", Code.InvalidArgument);
        }
        try {
          proc.resize(size.cols, size.rows);
        } catch (err) {
          throw toProcessError(err);
        }
      }
      return {};
    },

    async closeStdin(req) {
      const proc = registry.get(req.process);
      try {
        proc.closeStdin();
      } catch (err) {
        throw toProcessError(err);
      }
      return {};
    },
  };
}
