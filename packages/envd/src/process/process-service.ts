import type { ServiceImpl } from "@connectrpc/connect";
import type { Process } from "@wrenn/proto";
import type { EnvdContext } from "../context.js";

export function createProcessService(_ctx: EnvdContext): Partial<ServiceImpl<typeof Process>> {
  return {};
}
