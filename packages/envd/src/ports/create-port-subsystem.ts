import type { Logger } from "@wrenn/shared";
import type { PortSubsystem } from "./port-subsystem.js";

export interface PortSubsystemOptions {
  logger: Logger;
  scanIntervalMs: number;
  forwardHost: string | undefined;
}

export function createPortSubsystem(_options: PortSubsystemOptions): PortSubsystem {
  let running = false;
  return {
    get running() {
      return running;
    },
    start() {
      running = true;
    },
    async stop() {
      running = false;
    },
    async restart() {
      running = true;
    },
  };
}
